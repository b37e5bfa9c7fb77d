//! `test-receiver [ADDR]`: runs the test receiver and prints its address on the first line.

use std::io::Write;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let addr =
        addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let receiver = test_receiver::Receiver::start_on(addr).await?;
    println!("listening on http://{}", receiver.addr());
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    Ok(())
}
