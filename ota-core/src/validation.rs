//! Validation of package fields (title, version, description, tag, external URL) against a
//! configurable rule set.
//!
//! [`ValidationRules::default`] is permissive enough for ThingsBoard-style packages (bounded
//! lengths, no control characters or path separators in title and version);
//! [`ValidationRules::strict`] is the Tencent IoT Hub preset (title and version of 1 to 32
//! letters, digits, `.`, `_` or `-`). Every length is counted in characters, not bytes, and
//! every position reported in an error is a character index.

use serde::{Deserialize, Serialize};

/// The characters allowed in a title or a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Charset {
    /// Any character except control characters and the path separators `/` and `\`.
    #[default]
    Printable,
    /// ASCII letters, digits, `.`, `_` and `-` only.
    Strict,
}

impl Charset {
    /// Whether `c` is allowed by this charset.
    pub fn allows(self, c: char) -> bool {
        match self {
            Self::Printable => !c.is_control() && c != '/' && c != '\\',
            Self::Strict => c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
        }
    }
}

/// The rules package fields are validated with. Lengths are in characters.
///
/// Deserializing fills missing fields from [`ValidationRules::default`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ValidationRules {
    /// The minimum length of a title, a version and a tag (at least 1 is always enforced).
    pub min_len: usize,
    /// The maximum length of a title.
    pub max_title_len: usize,
    /// The maximum length of a version.
    pub max_version_len: usize,
    /// The maximum length of a description.
    pub max_description_len: usize,
    /// The maximum length of a tag.
    pub max_tag_len: usize,
    /// The maximum length of an external URL.
    pub max_url_len: usize,
    /// The characters allowed in titles and versions.
    pub charset: Charset,
}

impl Default for ValidationRules {
    /// Titles, versions and tags of 1 to 255 printable characters, descriptions of up to 1024
    /// characters, URLs of up to 2048 characters.
    fn default() -> Self {
        Self {
            min_len: 1,
            max_title_len: 255,
            max_version_len: 255,
            max_description_len: 1024,
            max_tag_len: 255,
            max_url_len: 2048,
            charset: Charset::Printable,
        }
    }
}

/// A package field that breaks a [`ValidationRules`] rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The field is empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The field (`title`, `version`, ...).
        field: &'static str,
    },
    /// The field is shorter than the configured minimum (but not empty).
    #[error("{field} is {len} characters long; at least {min} are required")]
    TooShort {
        /// The field (`title`, `version`, ...).
        field: &'static str,
        /// The minimum length in characters.
        min: usize,
        /// The actual length in characters.
        len: usize,
    },
    /// The field is longer than the configured maximum.
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// The field (`title`, `version`, ...).
        field: &'static str,
        /// The maximum length in characters.
        max: usize,
        /// The actual length in characters.
        len: usize,
    },
    /// The field has a character that is not allowed.
    #[error("{field} contains the forbidden character {character:?} at position {position}")]
    ForbiddenCharacter {
        /// The field (`title`, `version`, ...).
        field: &'static str,
        /// The first forbidden character.
        character: char,
        /// Its position in characters.
        position: usize,
    },
    /// The field starts or ends with whitespace.
    #[error("{field} must not start or end with whitespace")]
    SurroundingWhitespace {
        /// The field (`title`, `version`, ...).
        field: &'static str,
    },
    /// The URL is not an absolute `http://` or `https://` URL with a host.
    #[error("invalid url: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
}

impl ValidationRules {
    /// The Tencent IoT Hub preset: title and version of 1 to 32 ASCII letters, digits, `.`,
    /// `_` or `-`; the other limits as in [`ValidationRules::default`].
    pub fn strict() -> Self {
        Self {
            max_title_len: 32,
            max_version_len: 32,
            charset: Charset::Strict,
            ..Self::default()
        }
    }

    /// Validates a package title: non-empty, within the length bounds, no surrounding
    /// whitespace, only characters of the configured [`Charset`].
    pub fn validate_title(&self, title: &str) -> Result<(), ValidationError> {
        self.validate_name("title", title, self.max_title_len)
    }

    /// Validates a package version, with the same rules as titles and its own maximum length.
    pub fn validate_version(&self, version: &str) -> Result<(), ValidationError> {
        self.validate_name("version", version, self.max_version_len)
    }

    /// Validates a description: may be empty and may contain newlines, carriage returns and
    /// tabs, but no other control characters; bounded length.
    pub fn validate_description(&self, description: &str) -> Result<(), ValidationError> {
        const FIELD: &str = "description";
        check_max(FIELD, description, self.max_description_len)?;
        check_chars(FIELD, description, |c| {
            !c.is_control() || matches!(c, '\n' | '\r' | '\t')
        })
    }

    /// Validates a tag: non-empty, within the length bounds, no control characters. Tags are
    /// free text (ThingsBoard's default tag is `"<title> <version>"`), so the title charset
    /// does not apply.
    pub fn validate_tag(&self, tag: &str) -> Result<(), ValidationError> {
        const FIELD: &str = "tag";
        self.check_bounds(FIELD, tag, self.max_tag_len)?;
        check_chars(FIELD, tag, |c| !c.is_control())
    }

    /// Validates an external download URL: an absolute `http://` or `https://` URL with a
    /// non-empty host (a name, an IPv4 address or a bracketed IPv6 address), an optional
    /// numeric port, no whitespace or control characters, within the length bound.
    pub fn validate_url(&self, url: &str) -> Result<(), ValidationError> {
        const FIELD: &str = "url";
        if url.is_empty() {
            return Err(ValidationError::Empty { field: FIELD });
        }
        check_max(FIELD, url, self.max_url_len)?;
        check_chars(FIELD, url, |c| !c.is_control() && !c.is_whitespace())?;
        check_url_structure(url).map_err(|reason| ValidationError::InvalidUrl {
            reason: reason.to_string(),
        })
    }

    fn validate_name(
        &self,
        field: &'static str,
        value: &str,
        max: usize,
    ) -> Result<(), ValidationError> {
        self.check_bounds(field, value, max)?;
        if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
            return Err(ValidationError::SurroundingWhitespace { field });
        }
        let charset = self.charset;
        check_chars(field, value, |c| charset.allows(c))
    }

    fn check_bounds(
        &self,
        field: &'static str,
        value: &str,
        max: usize,
    ) -> Result<(), ValidationError> {
        if value.is_empty() {
            return Err(ValidationError::Empty { field });
        }
        let len = value.chars().count();
        if len < self.min_len {
            return Err(ValidationError::TooShort {
                field,
                min: self.min_len,
                len,
            });
        }
        check_max(field, value, max)
    }
}

fn check_max(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    let len = value.chars().count();
    if len > max {
        return Err(ValidationError::TooLong { field, max, len });
    }
    Ok(())
}

fn check_chars(
    field: &'static str,
    value: &str,
    allowed: impl Fn(char) -> bool,
) -> Result<(), ValidationError> {
    match value.chars().enumerate().find(|&(_, c)| !allowed(c)) {
        Some((position, character)) => Err(ValidationError::ForbiddenCharacter {
            field,
            character,
            position,
        }),
        None => Ok(()),
    }
}

/// Checks scheme, host and port of a URL already known to have no whitespace or control
/// characters. Returns the reason when it is not acceptable.
fn check_url_structure(url: &str) -> Result<(), &'static str> {
    let rest = strip_prefix_ignore_ascii_case(url, "https://")
        .or_else(|| strip_prefix_ignore_ascii_case(url, "http://"))
        .ok_or("must be an absolute URL starting with http:// or https://")?;
    // The authority ends at the first '/', '?' or '#'.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Drop user information (`user:password@`).
    let host_port = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let (host, port, is_ipv6) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let close = bracketed
            .find(']')
            .ok_or("IPv6 host is missing its closing ']'")?;
        let host = &bracketed[..close];
        let after = &bracketed[close + 1..];
        if host.is_empty() {
            return Err("host is empty");
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("IPv6 host has a character other than hex digits, ':' and '.'");
        }
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err("unexpected text after the IPv6 host"),
        };
        (host, port, true)
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port), false),
            None => (host_port, None, false),
        }
    };
    if host.is_empty() {
        return Err("host is empty");
    }
    if !is_ipv6
        && !host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err("host has a character other than letters, digits, '-', '.' and '_'");
    }
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err("port must be a number from 0 to 65535");
        }
        if port.parse::<u16>().is_err() {
            return Err("port must be a number from 0 to 65535");
        }
    }
    Ok(())
}

fn strip_prefix_ignore_ascii_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        value.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn forbidden(field: &'static str, character: char, position: usize) -> ValidationError {
        ValidationError::ForbiddenCharacter {
            field,
            character,
            position,
        }
    }

    #[test]
    fn presets_have_documented_limits() {
        let d = ValidationRules::default();
        assert_eq!(d.min_len, 1);
        assert_eq!((d.max_title_len, d.max_version_len), (255, 255));
        assert_eq!(d.max_description_len, 1024);
        assert_eq!(d.max_tag_len, 255);
        assert_eq!(d.max_url_len, 2048);
        assert_eq!(d.charset, Charset::Printable);
        let s = ValidationRules::strict();
        assert_eq!((s.max_title_len, s.max_version_len), (32, 32));
        assert_eq!(s.charset, Charset::Strict);
    }

    #[test]
    fn default_accepts_ordinary_titles_and_versions() {
        let r = ValidationRules::default();
        for ok in [
            "sensor-fw",
            "Sensor Firmware (beta)",
            "固件",
            "a",
            "v1.2.3+build.7",
            "1.0 RC 2",
        ] {
            assert_eq!(r.validate_title(ok), Ok(()), "{ok:?}");
            assert_eq!(r.validate_version(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(r.validate_title(&"é".repeat(255)), Ok(()));
    }

    #[test]
    fn default_rejects_bad_titles_and_versions() {
        let r = ValidationRules::default();
        assert_eq!(
            r.validate_title(""),
            Err(ValidationError::Empty { field: "title" })
        );
        assert_eq!(
            r.validate_version(""),
            Err(ValidationError::Empty { field: "version" })
        );
        assert_eq!(
            r.validate_title(&"é".repeat(256)),
            Err(ValidationError::TooLong {
                field: "title",
                max: 255,
                len: 256
            })
        );
        assert_eq!(r.validate_title("a/b"), Err(forbidden("title", '/', 1)));
        assert_eq!(
            r.validate_version("1\\2"),
            Err(forbidden("version", '\\', 1))
        );
        assert_eq!(
            r.validate_title("ab\u{7}"),
            Err(forbidden("title", '\u{7}', 2))
        );
        assert_eq!(r.validate_title("é\nx"), Err(forbidden("title", '\n', 1)));
        for bad in [" a", "a ", "\ta", "a\n", "   "] {
            assert!(
                matches!(
                    r.validate_title(bad),
                    Err(ValidationError::SurroundingWhitespace { field: "title" })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn strict_accepts_tencent_names_only() {
        let r = ValidationRules::strict();
        for ok in ["fw", "v1.2.3", "sensor_fw-2", &"a".repeat(32)] {
            assert_eq!(r.validate_title(ok), Ok(()), "{ok:?}");
            assert_eq!(r.validate_version(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(
            r.validate_title(&"a".repeat(33)),
            Err(ValidationError::TooLong {
                field: "title",
                max: 32,
                len: 33
            })
        );
        assert_eq!(r.validate_title("a b"), Err(forbidden("title", ' ', 1)));
        assert_eq!(r.validate_version("1+2"), Err(forbidden("version", '+', 1)));
        assert_eq!(r.validate_version("é"), Err(forbidden("version", 'é', 0)));
        assert_eq!(
            r.validate_title(""),
            Err(ValidationError::Empty { field: "title" })
        );
        assert_eq!(
            r.validate_title(" a"),
            Err(ValidationError::SurroundingWhitespace { field: "title" })
        );
    }

    #[test]
    fn min_len_is_configurable() {
        let r = ValidationRules {
            min_len: 3,
            ..ValidationRules::default()
        };
        assert_eq!(
            r.validate_title("ab"),
            Err(ValidationError::TooShort {
                field: "title",
                min: 3,
                len: 2
            })
        );
        assert_eq!(r.validate_title("abc"), Ok(()));
        assert_eq!(
            r.validate_tag(""),
            Err(ValidationError::Empty { field: "tag" })
        );
    }

    #[test]
    fn descriptions_allow_empty_and_line_breaks() {
        let r = ValidationRules::default();
        assert_eq!(r.validate_description(""), Ok(()));
        assert_eq!(r.validate_description("line 1\r\nline 2\tend / \\"), Ok(()));
        assert_eq!(r.validate_description(&"x".repeat(1024)), Ok(()));
        assert_eq!(
            r.validate_description(&"x".repeat(1025)),
            Err(ValidationError::TooLong {
                field: "description",
                max: 1024,
                len: 1025
            })
        );
        assert_eq!(
            r.validate_description("a\u{0}"),
            Err(forbidden("description", '\u{0}', 1))
        );
        assert_eq!(
            r.validate_description("\u{1b}[31m"),
            Err(forbidden("description", '\u{1b}', 0))
        );
    }

    #[test]
    fn tags_are_free_text_without_control_characters() {
        for r in [ValidationRules::default(), ValidationRules::strict()] {
            assert_eq!(r.validate_tag("sensor-fw 1.2/beta"), Ok(()));
            assert_eq!(
                r.validate_tag(""),
                Err(ValidationError::Empty { field: "tag" })
            );
            assert_eq!(r.validate_tag("a\nb"), Err(forbidden("tag", '\n', 1)));
            assert_eq!(
                r.validate_tag(&"t".repeat(256)),
                Err(ValidationError::TooLong {
                    field: "tag",
                    max: 255,
                    len: 256
                })
            );
        }
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        let r = ValidationRules::default();
        for ok in [
            "http://example.com",
            "https://example.com/fw/1.2.bin",
            "HTTPS://cdn.example.com:8443/a?b=c#d",
            "https://user:pw@example.com/x",
            "http://10.0.0.1:80/",
            "http://[::1]:8080/fw.bin",
            "http://[2001:db8::1]",
            "https://bücher.example/fw",
            "http://localhost?x",
        ] {
            assert_eq!(r.validate_url(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "ftp://example.com/fw.bin",
            "example.com/fw.bin",
            "/fw.bin",
            "http://",
            "https:///path",
            "http://:80/",
            "http://user@/x",
            "http://example.com:/x",
            "http://example.com:99999/x",
            "http://example.com:8a/x",
            "http://[::1/x",
            "http://[]/x",
            "http://[::1]x/",
            "http://[zz]/",
            "http://exa<mple.com/",
            "http//example.com",
        ] {
            assert!(
                matches!(r.validate_url(bad), Err(ValidationError::InvalidUrl { .. })),
                "{bad:?}: {:?}",
                r.validate_url(bad)
            );
        }
        assert_eq!(
            r.validate_url(""),
            Err(ValidationError::Empty { field: "url" })
        );
        assert_eq!(
            r.validate_url("http://example.com/a b"),
            Err(forbidden("url", ' ', 20))
        );
        assert_eq!(
            r.validate_url("http://example.com/\u{7f}"),
            Err(forbidden("url", '\u{7f}', 19))
        );
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(matches!(
            r.validate_url(&long),
            Err(ValidationError::TooLong {
                field: "url",
                max: 2048,
                ..
            })
        ));
    }

    #[test]
    fn errors_name_field_and_problem() {
        let r = ValidationRules::strict();
        let err = r.validate_title("a b").expect_err("space is not strict");
        assert_eq!(
            err.to_string(),
            "title contains the forbidden character ' ' at position 1"
        );
        let err = r.validate_version(&"1".repeat(40)).expect_err("too long");
        assert_eq!(
            err.to_string(),
            "version is 40 characters long; at most 32 are allowed"
        );
        let err = r.validate_url("ftp://x").expect_err("not http");
        assert!(err.to_string().starts_with("invalid url: "), "{err}");
    }

    #[test]
    fn rules_round_trip_through_serde_and_fill_defaults() {
        let strict = ValidationRules::strict();
        let json = serde_json::to_string(&strict).expect("serializes");
        let back: ValidationRules = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, strict);
        let partial: ValidationRules =
            serde_json::from_str(r#"{"charset":"strict","max_title_len":10}"#)
                .expect("partial config");
        assert_eq!(partial.charset, Charset::Strict);
        assert_eq!(partial.max_title_len, 10);
        assert_eq!(partial.max_url_len, 2048);
    }

    proptest! {
        #[test]
        fn strict_accepted_is_default_accepted(s in "[A-Za-z0-9._-]{0,40}|\\PC{0,40}") {
            let strict = ValidationRules::strict();
            let default = ValidationRules::default();
            if strict.validate_title(&s).is_ok() {
                prop_assert_eq!(default.validate_title(&s), Ok(()));
            }
            if strict.validate_version(&s).is_ok() {
                prop_assert_eq!(default.validate_version(&s), Ok(()));
            }
        }

        #[test]
        fn validation_never_panics(s in any::<String>(), prefix in prop::sample::select(vec!["", "http://", "https://", "http://[", "https://a:"])) {
            let input = format!("{prefix}{s}");
            for rules in [ValidationRules::default(), ValidationRules::strict()] {
                let _ = rules.validate_title(&input);
                let _ = rules.validate_version(&input);
                let _ = rules.validate_description(&input);
                let _ = rules.validate_tag(&input);
                let _ = rules.validate_url(&input);
            }
        }
    }
}
