//! Chat and cancellation in the web demo, through the SFU's data relay: a chat line reaches the
//! other page labelled with its sender, and a file transfer cancelled by the receiver ends as
//! `cancelled` on both pages.

use std::time::Duration;

use switchyard_tests::browser::{Driver, eval, wait_for_script, wait_until_data_flows};
use switchyard_tests::start_server;

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_arrives_and_a_receiver_can_cancel_a_transfer() {
    let server = start_server(None, |_| {}).await;
    let port = server.http_addr.port();
    let driver = Driver::start().await.expect("chromedriver");
    let ann = driver.browser().await.expect("browser");
    let ben = driver.browser().await.expect("browser");
    ann.goto(&format!("http://127.0.0.1:{port}/room/chat?name=Ann"))
        .await
        .unwrap();
    ben.goto(&format!("http://127.0.0.1:{port}/room/chat?name=Ben"))
        .await
        .unwrap();
    // Each page knows the other and data already flows both ways through the SFU.
    wait_until_data_flows(&[&ann, &ben], STEP).await;

    eval(
        &ann,
        "window.switchyard.chat('hello from Ann'); return true",
    )
    .await
    .unwrap();
    let line = wait_for_script(
        &ben,
        "Ann's chat line",
        STEP,
        "return window.switchyard.chatLog().find(m => m.text === 'hello from Ann') || null",
    )
    .await;
    assert!(
        line["from"].as_str().unwrap_or("").starts_with("ann"),
        "{line}"
    );

    // A 40 MiB file from Ann to Ben; Ben cancels once bytes are flowing.
    eval(
        &ann,
        "const ben = [...window.switchyard.client.participants.values()][0].identity;\
         const f = new File([new Uint8Array(40 * 1024 * 1024)], 'big.bin');\
         window.switchyard.sendFile(f, ben); return true",
    )
    .await
    .unwrap();
    let id = wait_for_script(
        &ben,
        "the transfer to start",
        STEP,
        "const t = window.switchyard.transfers().find(t => t.direction === 'receive' && t.bytes > 0);\
         return t ? t.id : null",
    )
    .await;
    eval(
        &ben,
        &format!("window.switchyard.cancelTransfer({id}); return true"),
    )
    .await
    .unwrap();
    for (page, who) in [(&ben, "Ben"), (&ann, "Ann")] {
        let state = wait_for_script(
            page,
            &format!("{who}'s transfer to end"),
            STEP,
            "const t = window.switchyard.transfers()[0];\
             return t && !['sending', 'receiving'].includes(t.state) ? t.state : null",
        )
        .await;
        assert_eq!(state, "cancelled", "{who}'s transfer");
    }
    for page in [ann, ben] {
        let _ = page.close().await;
    }
}
