//! The embedded assets are complete and consistent, and the router serves them with the
//! right headers (over a real socket).

use super::*;
use std::collections::BTreeSet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard")
}

/// Every `./x.js` a module imports.
fn imports(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|l| l.trim_start().starts_with("import ") || l.contains("} from '"))
        .filter_map(|l| l.split("from '").nth(1))
        .filter_map(|rest| rest.split('\'').next())
        .map(|p| p.trim_start_matches("./").to_string())
        .collect()
}

#[test]
fn every_file_of_the_asset_folder_is_embedded_and_nothing_else() {
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(dir().join("js")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        on_disk.insert(format!("js/{name}"));
    }
    on_disk.insert("style.css".to_string());
    let embedded: BTreeSet<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
    assert_eq!(embedded, on_disk);
}

#[test]
fn every_import_and_every_page_reference_resolves() {
    for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        for import in imports(a.body) {
            let path = format!("js/{import}");
            assert!(
                asset(&path).is_some(),
                "{} imports {path}, which is not embedded",
                a.path
            );
        }
    }
    let page = index_html(&DashboardOptions::default());
    for reference in ["assets/style.css", "assets/js/app.js"] {
        assert!(page.contains(reference));
        assert!(asset(reference.trim_start_matches("assets/")).is_some());
    }
}

#[test]
fn the_page_names_the_api_prefix_escaped() {
    let page = index_html(&DashboardOptions::default());
    assert!(page.contains(r#"<meta name="ota-api-prefix" content="/api/ota/v1">"#));
    assert!(page.contains(r#"<meta name="ota-poll-ms" content="3000">"#));
    assert!(!page.contains("{{"));
    let odd = DashboardOptions {
        api_prefix: r#"/x"><script>alert(1)</script>"#.into(),
        poll_ms: 500,
    };
    let page = index_html(&odd);
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("&quot;&gt;&lt;script&gt;"));
}

#[test]
fn no_asset_loads_anything_from_another_origin() {
    for a in ASSETS {
        for needle in ["http://", "https://", "//cdn", "eval("] {
            let hits: Vec<&str> = a
                .body
                .lines()
                .filter(|l| l.contains(needle) && !l.contains("www.w3.org/2000/svg"))
                .collect();
            assert!(hits.is_empty(), "{} contains {needle}: {hits:?}", a.path);
        }
    }
}

async fn fetch(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.to_ascii_lowercase()
}

#[tokio::test]
async fn the_router_serves_the_page_and_assets_and_refuses_unknown_ones() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, dashboard_router()).await });
    let page = fetch(addr, "/").await;
    assert!(page.starts_with("http/1.1 200"), "{page}");
    assert!(page.contains("content-type: text/html; charset=utf-8"));
    assert!(page.contains("content-security-policy: default-src 'self'"));
    assert!(page.contains("x-frame-options: deny"));
    let js = fetch(addr, "/assets/js/app.js").await;
    assert!(js.starts_with("http/1.1 200"), "{js}");
    assert!(js.contains("content-type: text/javascript"));
    assert!(js.contains("x-content-type-options: nosniff"));
    let css = fetch(addr, "/assets/style.css").await;
    assert!(css.contains("content-type: text/css"));
    let missing = fetch(addr, "/assets/js/nope.js").await;
    assert!(missing.starts_with("http/1.1 404"), "{missing}");
    let escape = fetch(addr, "/assets/../Cargo.toml").await;
    assert!(!escape.starts_with("http/1.1 200"), "{escape}");
    server.abort();
}
