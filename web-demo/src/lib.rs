//! The web demo's static files (lobby, call page, protocol module, styles), embedded in the
//! binary so that the server serves them with no files on disk and no build step.
//!
//! The files themselves live in `web-demo/static/`; edit them there and rebuild.

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
    "call.js" => "text/javascript; charset=utf-8",
    "transfer.js" => "text/javascript; charset=utf-8",
    "admin.html" => "text/html; charset=utf-8",
    "admin.js" => "text/javascript; charset=utf-8",
    "admin.css" => "text/css; charset=utf-8",
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
}
