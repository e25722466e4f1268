//! The dashboard's files, compiled into the binary from `examples/dashboard/`.

/// One embedded file.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// Its path under `/assets/`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its content.
    pub body: &'static str,
}

/// The page, with `{{API_PREFIX}}` and `{{POLL_MS}}` still to fill in.
pub(super) const INDEX_HTML: &str = include_str!("../../dashboard/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! assets {
    ($($kind:ident $path:literal),* $(,)?) => {
        /// Every file served under `/assets/`.
        pub const ASSETS: &[Asset] = &[
            $(Asset {
                path: $path,
                content_type: $kind,
                body: include_str!(concat!("../../dashboard/", $path)),
            },)*
        ];
    };
}

assets! {
    CSS "style.css",
    JS "js/app.js",
    JS "js/api.js",
    JS "js/dom.js",
    JS "js/format.js",
    JS "js/dialog.js",
    JS "js/names.js",
    JS "js/login.js",
    JS "js/campaigns.js",
    JS "js/campaign_form.js",
    JS "js/campaign_detail.js",
    JS "js/campaign_devices.js",
    JS "js/chart.js",
    JS "js/packages.js",
    JS "js/devices.js",
    JS "js/audit.js",
}

/// The embedded file at `path` (relative to `/assets/`).
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
