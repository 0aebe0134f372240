//! Takes a screenshot of the web demo's call page during a three-person call, to look at what a
//! user sees. Usage: cargo run -p switchyard-tests --example call_screenshot -- HTTP_PORT OUT.png
//! (with a server already running on 127.0.0.1:HTTP_PORT).

use std::time::Duration;

use switchyard_tests::browser::Driver;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let port = args.next().unwrap_or_else(|| "8080".into());
    let out = args.next().unwrap_or_else(|| "call.png".into());
    let driver = Driver::start().await?;
    let mut pages = Vec::new();
    for name in ["Alice", "Bob", "Carol"] {
        let page = driver.browser().await?;
        page.goto(&format!(
            "http://127.0.0.1:{port}/room/screenshot?name={name}"
        ))
        .await?;
        pages.push(page);
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let png = pages[0].screenshot().await?;
    std::fs::write(&out, png)?;
    println!("wrote {out}");
    for page in pages {
        let _ = page.close().await;
    }
    Ok(())
}
