//! Query strings of the device API, parsed strictly: a malformed value is a 400 that names
//! the parameter, never a silent default.

use crate::error::ApiError;

/// The decoded `name=value` pairs of a query string, in order.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }

    /// The first value of `name`, if given.
    pub(crate) fn first(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every item of `name`, whether given as a comma list, as repeated parameters or both;
    /// `None` when the parameter is absent.
    pub(crate) fn list(&self, name: &str) -> Option<Vec<String>> {
        let mut found = false;
        let mut items = Vec::new();
        for (_, v) in self.pairs.iter().filter(|(k, _)| k == name) {
            found = true;
            items.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
        found.then_some(items)
    }

    /// `name` as a non-negative integer; absent or empty is `None`.
    pub(crate) fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(text) = self.first(name).map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request(format!(
                "query parameter {name}={text:?} must be a non-negative integer"
            )));
        }
        text.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "query parameter {name}={text:?} is too large (at most {})",
                u64::MAX
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_as_commas_or_repeats() {
        let q = Query::parse(Some(
            "sharedKeys=fw_title,fw_version&sharedKeys=sw_title&x=",
        ));
        assert_eq!(
            q.list("sharedKeys").unwrap(),
            vec!["fw_title", "fw_version", "sw_title"]
        );
        assert_eq!(q.list("clientKeys"), None);
        assert_eq!(q.list("x"), Some(vec![]));
        let q = Query::parse(Some("sharedKeys=fw_title%2C%20fw_size"));
        assert_eq!(q.list("sharedKeys").unwrap(), vec!["fw_title", "fw_size"]);
    }

    #[test]
    fn integers_are_strict() {
        let q = Query::parse(Some(
            "a=12&b=-1&c=abc&d=99999999999999999999999&e=&f=1.5&g=%2B1",
        ));
        assert_eq!(q.u64("a").unwrap(), Some(12));
        assert_eq!(q.u64("e").unwrap(), None);
        assert_eq!(q.u64("missing").unwrap(), None);
        for bad in ["b", "c", "d", "f", "g"] {
            let e = q.u64(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
            assert!(e.message.contains(bad), "{}", e.message);
        }
    }
}
