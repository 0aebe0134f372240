//! The web demo's static files (lobby, call page, protocol module, admin dashboard, recordings
//! player, styles), embedded in the binary so that the server serves them with no files on disk
//! and no build step. The server serves `NAME` at `/static/NAME` (so `vendor/hls.min.js` at
//! `/static/vendor/hls.min.js`).
//!
//! The files themselves live in `web-demo/static/`; edit them there and rebuild. Third-party files
//! are in `static/vendor/`, with their licences and origin (`static/vendor/README.md`).

/// One embedded file.
pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
}

macro_rules! assets {
    ($($name:literal => $mime:literal),* $(,)?) => {
        /// Looks up a file by its name under `static/` (for example `call.js`).
        pub fn asset(name: &str) -> Option<Asset> {
            match name {
                $($name => Some(Asset {
                    bytes: include_bytes!(concat!("../static/", $name)),
                    content_type: $mime,
                }),)*
                _ => None,
            }
        }

        /// Every embedded file name.
        pub const NAMES: &[&str] = &[$($name),*];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "room.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "switchyard.js" => "text/javascript; charset=utf-8",
    "switchyard-data.js" => "text/javascript; charset=utf-8",
    "switchyard-media.js" => "text/javascript; charset=utf-8",
    "switchyard-token.js" => "text/javascript; charset=utf-8",
    "switchyard-route.js" => "text/javascript; charset=utf-8",
    "switchyard-publish.js" => "text/javascript; charset=utf-8",
    "switchyard-remote.js" => "text/javascript; charset=utf-8",
    "call.js" => "text/javascript; charset=utf-8",
    "call-adaptive.js" => "text/javascript; charset=utf-8",
    "call-files.js" => "text/javascript; charset=utf-8",
    "call-media.js" => "text/javascript; charset=utf-8",
    "call-share.js" => "text/javascript; charset=utf-8",
    "call-tiles.js" => "text/javascript; charset=utf-8",
    "call-ui.js" => "text/javascript; charset=utf-8",
    "transfer.js" => "text/javascript; charset=utf-8",
    "admin.html" => "text/html; charset=utf-8",
    "admin.js" => "text/javascript; charset=utf-8",
    "admin-actions.js" => "text/javascript; charset=utf-8",
    "admin-api.js" => "text/javascript; charset=utf-8",
    "admin-charts.js" => "text/javascript; charset=utf-8",
    "admin-dom.js" => "text/javascript; charset=utf-8",
    "admin-format.js" => "text/javascript; charset=utf-8",
    "admin-model.js" => "text/javascript; charset=utf-8",
    "admin-notices.js" => "text/javascript; charset=utf-8",
    "admin-participants.js" => "text/javascript; charset=utf-8",
    "admin-recording.js" => "text/javascript; charset=utf-8",
    "admin-rooms.js" => "text/javascript; charset=utf-8",
    "admin-session.js" => "text/javascript; charset=utf-8",
    "admin-signin.js" => "text/javascript; charset=utf-8",
    "admin-sse.js" => "text/javascript; charset=utf-8",
    "admin-stream.js" => "text/javascript; charset=utf-8",
    "admin.css" => "text/css; charset=utf-8",
    "recordings.html" => "text/html; charset=utf-8",
    "recordings.js" => "text/javascript; charset=utf-8",
    "watch.html" => "text/html; charset=utf-8",
    "watch.js" => "text/javascript; charset=utf-8",
    // hls.js 1.7.4 from npm, unmodified, with its licence (see static/vendor/README.md).
    "vendor/hls.min.js" => "text/javascript; charset=utf-8",
    "vendor/hls.js-LICENSE" => "text/plain; charset=utf-8",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_asset_is_embedded_and_non_empty() {
        for name in NAMES {
            let a = asset(name).expect("listed asset");
            assert!(!a.bytes.is_empty(), "{name} is empty");
        }
        assert!(asset("../Cargo.toml").is_none());
    }

    /// Every `from './x.js'` of an embedded module names an embedded file (else the browser gets
    /// a 404 and the whole page's script fails to load).
    #[test]
    fn every_module_import_is_embedded() {
        for name in NAMES
            .iter()
            .filter(|n| n.ends_with(".js") && !n.starts_with("vendor/"))
        {
            let text = std::str::from_utf8(asset(name).unwrap().bytes).expect("utf-8");
            for piece in text.split("from './").skip(1) {
                let target = piece.split('\'').next().unwrap_or_default();
                assert!(
                    asset(target).is_some(),
                    "{name} imports {target}, which is not embedded"
                );
            }
        }
    }

    #[test]
    fn hls_js_is_vendored_with_its_licence() {
        let hls = asset("vendor/hls.min.js").expect("hls.js");
        assert!(hls.content_type.starts_with("text/javascript"));
        let text = std::str::from_utf8(hls.bytes).expect("utf-8");
        assert!(text.contains("\"1.7.4\""), "hls.js is not version 1.7.4");
        let licence = asset("vendor/hls.js-LICENSE").expect("licence");
        assert!(
            std::str::from_utf8(licence.bytes)
                .unwrap()
                .contains("Apache License")
        );
        let page = std::str::from_utf8(asset("recordings.html").unwrap().bytes).unwrap();
        assert!(page.contains("/static/vendor/hls.min.js"));
        assert!(page.contains("/static/recordings.js"));
    }
}
