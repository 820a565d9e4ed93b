//! The enrollment link a QR code carries: the server's address and a one-time
//! code in one scan, `gridsync://enroll?server=<address>&code=<code>`. The
//! console prints it; an app scans it and passes both halves to `enroll`.

use std::fmt;

/// Longest link accepted (a QR code of this size still scans from paper).
pub const MAX_LINK_CHARS: usize = 512;
const PREFIX: &str = "gridsync://enroll?";

/// A parsed enrollment link.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentLink {
    /// The server's address, `http://` or `https://`.
    pub server: String,
    /// The one-time code.
    pub code: String,
}

/// Why a scanned text is not an enrollment link. Never repeats the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a gridsync enrollment link: {0}")]
pub struct LinkError(&'static str);

impl EnrollmentLink {
    /// Read a link, checking both halves.
    pub fn parse(text: &str) -> Result<EnrollmentLink, LinkError> {
        let text = text.trim();
        if text.chars().count() > MAX_LINK_CHARS {
            return Err(LinkError("too long"));
        }
        let query = text
            .strip_prefix(PREFIX)
            .ok_or(LinkError("it does not start with gridsync://enroll?"))?;
        let (mut server, mut code) = (None, None);
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').ok_or(LinkError("a malformed field"))?;
            let value = unescape(value).ok_or(LinkError("a malformed escape"))?;
            match key {
                "server" if server.is_none() => server = Some(value),
                "code" if code.is_none() => code = Some(value),
                _ => return Err(LinkError("an unknown or repeated field")),
            }
        }
        let server = server.ok_or(LinkError("no server"))?;
        let code = code.ok_or(LinkError("no code"))?;
        let link = EnrollmentLink { server, code };
        link.check()?;
        Ok(link)
    }

    /// A link for `server` and `code`, both checked.
    pub fn new(server: &str, code: &str) -> Result<EnrollmentLink, LinkError> {
        let link = EnrollmentLink {
            server: server.trim().trim_end_matches('/').to_owned(),
            code: code.trim().to_owned(),
        };
        link.check()?;
        Ok(link)
    }

    fn check(&self) -> Result<(), LinkError> {
        let rest = self
            .server
            .strip_prefix("https://")
            .or_else(|| self.server.strip_prefix("http://"))
            .ok_or(LinkError(
                "the server is not an http:// or https:// address",
            ))?;
        // The authority ends at the first '/', '?' or '#'; user info ('@') in it
        // would let a link show one host and reach another.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty()
            || authority.contains('@')
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(LinkError("the server address is malformed"));
        }
        if !(4..=32).contains(&self.code.len())
            || !self.code.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(LinkError("the code is not 4 to 32 letters and digits"));
        }
        Ok(())
    }
}

impl fmt::Display for EnrollmentLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}server={}&code={}",
            escape(&self.server),
            self.code
        )
    }
}

// The code is a secret until used: never printed by `Debug`.
impl fmt::Debug for EnrollmentLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentLink")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Percent-encode everything but unreserved characters (RFC 3986).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_round_trips_and_bad_ones_say_why_without_the_code() {
        let link =
            EnrollmentLink::new("https://gs.example.gov.cn:8443/town/", "ABCD2345EF").unwrap();
        let text = link.to_string();
        assert_eq!(
            text,
            "gridsync://enroll?server=https%3A%2F%2Fgs.example.gov.cn%3A8443%2Ftown&code=ABCD2345EF"
        );
        assert_eq!(EnrollmentLink::parse(&text).unwrap(), link);
        assert!(!format!("{link:?}").contains("ABCD"));
        for bad in [
            "https://gs.example.gov.cn",
            "gridsync://enroll?server=ftp%3A%2F%2Fx&code=ABCD2345EF",
            "gridsync://enroll?server=http%3A%2F%2Fx&code=AB",
            "gridsync://enroll?server=http%3A%2F%2Fx&code=ABCD2345EF&code=ZZZZ",
            "gridsync://enroll?server=http%3A%2F%2Fx%ZZ&code=ABCD2345EF",
            "gridsync://enroll?code=ABCD2345EF",
            "gridsync://enroll?server=https%3A%2F%2Fgov.cn%40evil.example&code=ABCD2345EF",
            "gridsync://enroll?server=https%3A%2F%2F%2Fpath&code=ABCD2345EF",
        ] {
            let err = EnrollmentLink::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("ABCD2345EF"), "{err}");
        }
        assert!(EnrollmentLink::parse(&"x".repeat(600)).is_err());
    }
}
