//! WS-Management request envelopes as AMT expects them (DSP0226 1.0 over SOAP 1.2, with
//! WS-Addressing 2004/08, WS-Enumeration 2004/09 and WS-Transfer 2004/09), in the layout that
//! Intel's own tools send: a default SOAP namespace, `a:` for addressing, `w:` for WS-Man, `h:`
//! for the class's schema.

use std::fmt::Write as _;

/// SOAP 1.2 envelope namespace.
pub(crate) const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing (2004/08), as AMT uses it.
pub(crate) const NS_ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// WS-Management.
pub(crate) const NS_WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// WS-Enumeration (2004/09).
pub(crate) const NS_ENUMERATION: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
/// WS-Transfer (2004/09).
pub(crate) const NS_TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
/// The anonymous reply-to address.
pub(crate) const ANONYMOUS: &str =
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// The three schemas AMT's classes live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schema {
    /// `http://intel.com/wbem/wscim/1/amt-schema/1/`.
    Amt,
    /// `http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/`.
    Cim,
    /// `http://intel.com/wbem/wscim/1/ips-schema/1/`.
    Ips,
}

impl Schema {
    pub(crate) fn base(self) -> &'static str {
        match self {
            Self::Amt => "http://intel.com/wbem/wscim/1/amt-schema/1/",
            Self::Cim => "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/",
            Self::Ips => "http://intel.com/wbem/wscim/1/ips-schema/1/",
        }
    }
}

/// A class: its schema and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class(pub(crate) Schema, pub(crate) &'static str);

impl Class {
    pub(crate) fn uri(self) -> String {
        format!("{}{}", self.0.base(), self.1)
    }
    pub(crate) fn name(self) -> &'static str {
        self.1
    }
}

/// Escapes text for element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole envelope: header for `action` on `resource`, then `body` (already XML).
pub(crate) fn envelope(action: &str, resource: &str, message_id: &str, body: &str) -> Vec<u8> {
    let mut x = String::with_capacity(768 + body.len());
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Envelope \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:a=\"{NS_ADDRESSING}\" \
         xmlns:w=\"{NS_WSMAN}\" xmlns=\"{NS_SOAP}\"><Header><a:Action>{}</a:Action>\
         <a:To>/wsman</a:To><w:ResourceURI>{}</w:ResourceURI><a:MessageID>{}</a:MessageID>\
         <a:ReplyTo><a:Address>{ANONYMOUS}</a:Address></a:ReplyTo>\
         <w:OperationTimeout>PT60S</w:OperationTimeout></Header><Body>{body}</Body></Envelope>",
        escape(action),
        escape(resource),
        escape(message_id),
    );
    x.into_bytes()
}

/// WS-Transfer Get.
pub(crate) fn get(class: Class, message_id: &str) -> Vec<u8> {
    envelope(&format!("{NS_TRANSFER}/Get"), &class.uri(), message_id, "")
}

/// WS-Enumeration Enumerate.
pub(crate) fn enumerate(class: Class, message_id: &str) -> Vec<u8> {
    envelope(
        &format!("{NS_ENUMERATION}/Enumerate"),
        &class.uri(),
        message_id,
        &format!("<Enumerate xmlns=\"{NS_ENUMERATION}\" />"),
    )
}

/// WS-Enumeration Pull with the device's context.
pub(crate) fn pull(class: Class, context: &str, message_id: &str) -> Vec<u8> {
    envelope(
        &format!("{NS_ENUMERATION}/Pull"),
        &class.uri(),
        message_id,
        &format!(
            "<Pull xmlns=\"{NS_ENUMERATION}\"><EnumerationContext>{}</EnumerationContext>\
             <MaxElements>999</MaxElements><MaxCharacters>99999</MaxCharacters></Pull>",
            escape(context)
        ),
    )
}

/// WS-Transfer Put of an instance: `props` are (name, value) in the order AMT lists them.
pub(crate) fn put(class: Class, props: &[(String, String)], message_id: &str) -> Vec<u8> {
    let uri = class.uri();
    let mut body = format!("<h:{} xmlns:h=\"{}\">", class.name(), escape(&uri));
    for (k, v) in props {
        let _ = write!(body, "<h:{k}>{}</h:{k}>", escape(v));
    }
    let _ = write!(body, "</h:{}>", class.name());
    envelope(&format!("{NS_TRANSFER}/Put"), &uri, message_id, &body)
}

/// A method invocation: action `<class URI>/<method>`, body `<h:<method>_INPUT>` with `input`
/// (already XML, `h:`-prefixed).
pub(crate) fn invoke(class: Class, method: &str, input: &str, message_id: &str) -> Vec<u8> {
    let uri = class.uri();
    let body = if input.is_empty() {
        format!("<h:{method}_INPUT xmlns:h=\"{uri}\" />")
    } else {
        format!("<h:{method}_INPUT xmlns:h=\"{uri}\">{input}</h:{method}_INPUT>")
    };
    envelope(&format!("{uri}/{method}"), &uri, message_id, &body)
}

/// An endpoint reference to an instance of `class` with these selectors, as a method parameter
/// named `param`.
pub(crate) fn reference(param: &str, class: Class, selectors: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<h:{param}><Address xmlns=\"{NS_ADDRESSING}\">{NS_ADDRESSING}</Address>\
         <ReferenceParameters xmlns=\"{NS_ADDRESSING}\"><ResourceURI xmlns=\"{NS_WSMAN}\">{}\
         </ResourceURI><SelectorSet xmlns=\"{NS_WSMAN}\">",
        class.uri()
    );
    for (k, v) in selectors {
        let _ = write!(
            s,
            "<Selector Name=\"{}\">{}</Selector>",
            escape(k),
            escape(v)
        );
    }
    let _ = write!(s, "</SelectorSet></ReferenceParameters></h:{param}>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amt::xml;

    #[test]
    fn envelopes_parse_and_carry_the_header() {
        let c = Class(Schema::Cim, "CIM_PowerManagementService");
        let cs = Class(Schema::Cim, "CIM_ComputerSystem");
        let input = format!(
            "<h:PowerState>8</h:PowerState>{}",
            reference(
                "ManagedElement",
                cs,
                &[
                    ("CreationClassName", "CIM_ComputerSystem"),
                    ("Name", "ManagedSystem")
                ]
            )
        );
        let x = invoke(c, "RequestPowerStateChange", &input, "uuid:1<&>");
        let e = xml::parse(&x).unwrap();
        let h = e.child("Header").unwrap();
        assert_eq!(
            h.child_text("Action"),
            Some(
                "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PowerManagementService/\
                 RequestPowerStateChange"
            )
        );
        assert_eq!(h.child_text("MessageID"), Some("uuid:1<&>"));
        let b = e
            .path(&["Body", "RequestPowerStateChange_INPUT", "ManagedElement"])
            .unwrap();
        let sel: Vec<_> = b
            .path(&["ReferenceParameters", "SelectorSet"])
            .unwrap()
            .children_named("Selector")
            .map(|s| (s.attr("Name").unwrap(), s.text.as_str()))
            .collect();
        assert_eq!(
            sel,
            [
                ("CreationClassName", "CIM_ComputerSystem"),
                ("Name", "ManagedSystem")
            ]
        );
        let p = pull(c, "ctx<1>", "2");
        let e = xml::parse(&p).unwrap();
        assert_eq!(
            e.path(&["Body", "Pull"])
                .unwrap()
                .child_text("EnumerationContext"),
            Some("ctx<1>")
        );
        let p = put(c, &[("A".into(), "x&y".into())], "3");
        let e = xml::parse(&p).unwrap();
        assert_eq!(
            e.path(&["Body", "CIM_PowerManagementService"])
                .unwrap()
                .child_text("A"),
            Some("x&y")
        );
    }
}
