//! Input rules, checked before anything reaches the store. Each returns a 400 with a stable
//! code naming the field, never echoing the value.

use super::error::{ApiError, ApiResult};

/// Longest account name.
pub(super) const MAX_NAME: usize = 64;
/// Longest free-text field (host name, display name, DNS suffix).
pub(super) const MAX_TEXT: usize = 255;
/// Most tags on a device.
pub(super) const MAX_TAGS: usize = 32;
/// Longest tag.
pub(super) const MAX_TAG: usize = 64;
/// Largest `deviceInfo` object, serialized.
pub(super) const MAX_DEVICE_INFO: usize = 4096;

/// An account name: 1–64 of `A-Z a-z 0-9 . _ @ -`, starting with a letter or digit. It is also
/// the MQTT username, so it can never contain a wildcard or a level separator.
pub(super) fn account_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_name",
            format!(
                "a name is 1 to {MAX_NAME} of A-Z a-z 0-9 . _ @ -, starting with a letter or digit"
            ),
        ))
    }
}

/// An AMT GUID in canonical form (8-4-4-4-12 hex digits); returns it lowercased.
pub(super) fn guid(raw: &str) -> ApiResult<String> {
    rampart_credentials::DeviceGuid::parse(raw)
        .map(|g| g.as_str().to_owned())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_guid",
                "a GUID is 32 hex digits as 8-4-4-4-12, like 123e4567-e89b-12d3-a456-426614174000",
            )
        })
}

/// Free text: at most `max` bytes, no control characters.
pub(super) fn text(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("`{field}` must be at most {max} bytes without control characters"),
        ));
    }
    Ok(())
}

/// Non-empty free text.
pub(super) fn required_text(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("`{field}` must not be empty"),
        ));
    }
    text(field, value, max)
}

/// Device tags: at most [`MAX_TAGS`], each non-empty and at most [`MAX_TAG`] bytes; duplicates
/// are removed, order kept.
pub(super) fn tags(tags: &[String]) -> ApiResult<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        required_text("tags", t, MAX_TAG)?;
        if t.contains(',') {
            return Err(ApiError::bad_request(
                "invalid_value",
                "a tag must not contain a comma (the list query separates tags with commas)",
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// An ACL topic filter: a valid MQTT filter, where `%u` and `%c` may stand for a whole level.
pub(super) fn topic_filter(topic: &str) -> ApiResult<()> {
    if rampart_policy::acl::valid_topic_filter(topic) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_topic",
            "`topic` must be a valid MQTT topic filter (`+` and `#` only as whole levels, `#` \
             last, no NUL, 1 to 65535 bytes)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["admin", "scenectrl", "cam-01.lab_a@site", "A"] {
            account_name(ok).unwrap();
        }
        for bad in [
            "",
            "-x",
            ".x",
            "a/b",
            "a+b",
            "a#",
            "x y",
            "x'; DROP TABLE accounts;--",
            "é",
            &"a".repeat(65),
        ] {
            assert_eq!(account_name(bad).unwrap_err().code, "invalid_name", "{bad}");
        }
    }

    #[test]
    fn guids() {
        assert_eq!(
            guid("123E4567-E89B-12D3-A456-426614174000").unwrap(),
            "123e4567-e89b-12d3-a456-426614174000"
        );
        for bad in [
            "",
            "123e4567e89b12d3a456426614174000",
            "123e4567-e89b-12d3-a456-42661417400g",
            "../../etc/passwd-aaaa-bbbb-cccccccccccc",
            "123e4567-e89b-12d3-a456-4266141740000",
        ] {
            assert_eq!(guid(bad).unwrap_err().code, "invalid_guid", "{bad}");
        }
    }

    #[test]
    fn tag_rules() {
        assert_eq!(
            tags(&["a".into(), "b".into(), "a".into()]).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(tags(&["".into()]).is_err());
        assert!(tags(&["a,b".into()]).is_err());
        assert!(tags(&["x\n".into()]).is_err());
        assert!(tags(&vec!["t".to_string(); 32]).is_ok_and(|v| v.len() == 1));
        let many: Vec<String> = (0..33).map(|i| i.to_string()).collect();
        assert!(tags(&many).is_err());
    }
}
