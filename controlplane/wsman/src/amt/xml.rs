//! A small, bounded element tree over `quick-xml` for the device's SOAP answers.
//!
//! The device is not trusted: the tree refuses a DTD (so no entity can be declared or expanded),
//! resolves only the five predefined entities and character references, and caps depth, element
//! count, attributes per element and text size. Elements and attributes are known by their
//! local names: AMT firmware versions pick different namespace prefixes (`a:`, `g:`, `h:`...).

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::AmtError;

/// Deepest element nesting accepted (AMT's answers nest about 8 deep).
pub(crate) const MAX_DEPTH: usize = 32;
/// Most elements in one answer (a full event log page is about 400).
pub(crate) const MAX_ELEMENTS: usize = 20_000;
/// Most attributes on one element.
pub(crate) const MAX_ATTRIBUTES: usize = 32;
/// Most text in one element (an audit log page holds base64 records, each under 1 KiB).
pub(crate) const MAX_TEXT: usize = 64 * 1024;

/// One element: its local name, attributes (local name, value), text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
}

impl Element {
    /// The first child with this local name.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub(crate) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a path of local names from this element.
    pub(crate) fn path(&self, path: &[&str]) -> Option<&Element> {
        let mut at = self;
        for p in path {
            at = at.child(p)?;
        }
        Some(at)
    }

    /// The trimmed text of the child with this local name.
    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// An attribute's value, by local name.
    #[cfg(test)]
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn local(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, l)| l)
}

fn open(e: &BytesStart<'_>) -> Result<Element, AmtError> {
    let name = e.local_name();
    let mut el = Element {
        name: name.as_ref().to_string(),
        ..Element::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|_| AmtError::BadResponse("malformed XML attribute"))?;
        let key = a.key.as_ref();
        // Namespace declarations carry no data we use.
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        if el.attrs.len() >= MAX_ATTRIBUTES {
            return Err(AmtError::BadResponse("too many XML attributes"));
        }
        let v = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|_| AmtError::BadResponse("bad XML attribute value"))?;
        el.attrs.push((local(key).to_string(), v.into_owned()));
    }
    Ok(el)
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), AmtError> {
    match stack.last_mut() {
        Some(top) => {
            if top.text.len() + text.len() > MAX_TEXT {
                return Err(AmtError::BadResponse("XML text too long"));
            }
            top.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(AmtError::BadResponse("text outside the XML root")),
    }
}

/// Parses a whole document into its root element.
pub(crate) fn parse(body: &[u8]) -> Result<Element, AmtError> {
    let text = std::str::from_utf8(body).map_err(|_| AmtError::BadResponse("XML is not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let ev = reader
            .read_event()
            .map_err(|_| AmtError::BadResponse("malformed XML"))?;
        match ev {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(AmtError::BadResponse("more than one XML root"));
            }
            Event::Start(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(AmtError::BadResponse("too many XML elements"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(AmtError::BadResponse("XML nested too deep"));
                }
                stack.push(open(&e)?);
            }
            Event::Empty(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(AmtError::BadResponse("too many XML elements"));
                }
                let el = open(&e)?;
                match stack.last_mut() {
                    Some(top) => top.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or(AmtError::BadResponse("unbalanced XML"))?;
                match stack.last_mut() {
                    Some(top) => top.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content())?,
            Event::CData(c) => {
                push_text(&mut stack, &c.xml10_content())?;
            }
            Event::GeneralRef(r) => {
                let ch = match r
                    .resolve_char_ref()
                    .map_err(|_| AmtError::BadResponse("bad XML character reference"))?
                {
                    Some(c) => c,
                    None => match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        _ => return Err(AmtError::BadResponse("unknown XML entity")),
                    },
                };
                let mut buf = [0u8; 4];
                push_text(&mut stack, ch.encode_utf8(&mut buf))?;
            }
            // No DTD: nothing may declare entities or defaults.
            Event::DocType(_) => return Err(AmtError::BadResponse("XML DTD refused")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(AmtError::BadResponse("truncated XML"));
    }
    root.ok_or(AmtError::BadResponse("empty XML document"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_entities_and_cdata() {
        let x = br#"<?xml version="1.0"?><a:E xmlns:a="u" a:k="v&amp;w"><b:T>x &lt;&#65;&#x42;&gt; <![CDATA[<c>]]></b:T><b:Empty/></a:E>"#;
        let r = parse(x).unwrap();
        assert_eq!(r.name, "E");
        assert_eq!(r.attr("k"), Some("v&w"));
        assert_eq!(r.child_text("T"), Some("x <AB> <c>"));
        assert!(r.child("Empty").is_some());
    }

    #[test]
    fn hostile_documents_are_refused() {
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        let wide = format!("<r>{}</r>", "<a/>".repeat(MAX_ELEMENTS + 1));
        let long = format!("<r>{}</r>", "x".repeat(MAX_TEXT + 1));
        let bombs: [&[u8]; 12] = [
            b"",
            b"<a>",
            b"<a></b>",
            b"<a/><b/>",
            b"text",
            b"<a>&foo;</a>",
            b"<a>&#0;</a>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            b"<a b=\"&x;\"/>",
            b"<a \xff/>",
            b"<a><![CDATA[x</a>",
            b"</a>",
        ];
        for b in bombs {
            assert!(parse(b).is_err(), "{}", String::from_utf8_lossy(b));
        }
        assert!(parse(deep.as_bytes()).is_err());
        assert!(parse(wide.as_bytes()).is_err());
        assert!(parse(long.as_bytes()).is_err());
    }
}
