//! What a person sees: amounts in whole units, spinners for waits, and the live status line
//! the devnet shows after the flow until Ctrl-C.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::flow::{Env, Summary};
use super::DevnetError;
use crate::adapter::ChainAdapter;
use crate::api::convert::asset_to_pb;
use crate::chain::Asset;

/// A spinner with `message` and the elapsed time (hidden when stdout is not a terminal).
pub fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Prints `line` above `bar` (or plainly when the bar is hidden: stdout is not a terminal).
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

fn decimals(asset: Asset) -> u32 {
    match asset {
        Asset::METH => 18,
        Asset::MBTC => 8,
    }
}

/// `amount` (wei or satoshi) in whole units without trailing zeros, e.g. `0.99997`.
pub fn fmt_units(asset: Asset, amount: u128) -> String {
    let scale = 10u128.pow(decimals(asset));
    let whole = amount / scale;
    let frac = amount % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = decimals(asset) as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A mapped amount: `1.5 mETH`.
pub fn fmt_amount(asset: Asset, amount: u128) -> String {
    format!("{} {asset}", fmt_units(asset, amount))
}

/// An amount on the external chain: `1.5 ETH`.
pub fn fmt_external(asset: Asset, amount: u128) -> String {
    let unit = match asset {
        Asset::METH => "ETH",
        Asset::MBTC => "BTC",
    };
    format!("{} {unit}", fmt_units(asset, amount))
}

/// Shows the chain height, the external tips and the mapped totals every second until an
/// error (a child process died) or the caller stops waiting (Ctrl-C).
pub async fn live(env: &mut Env<'_>, summary: &Summary) -> Result<(), DevnetError> {
    println!(
        "user {} deposit addresses: {}",
        summary.user,
        summary
            .deposit_addresses
            .iter()
            .map(|(a, addr)| format!("{a} {addr}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut last_printed = std::time::Instant::now();
    loop {
        env.running_check.check()?;
        let line = match status_line(env).await {
            Ok(l) => l,
            Err(e) => format!("status unavailable: {e}"),
        };
        bar.set_message(line.clone());
        // Without a terminal the spinner is hidden: print a line every 30 s instead.
        if bar.is_hidden() && last_printed.elapsed() >= Duration::from_secs(30) {
            println!("{line}");
            last_printed = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn status_line(env: &mut Env<'_>) -> Result<String, DevnetError> {
    let s = env.api.status().await?;
    let eth = env.eth.tip_height().await?;
    let btc = env.btc.tip_height().await?;
    let mut totals = Vec::new();
    for asset in Asset::ALL {
        if let Some(t) = s.totals.iter().find(|t| t.asset == asset_to_pb(asset)) {
            let supply: u128 = t.supply.parse().unwrap_or_default();
            let burned: u128 = t.burned.parse().unwrap_or_default();
            totals.push(format!(
                "{asset} supply {} burned {}",
                fmt_units(asset, supply),
                fmt_units(asset, burned)
            ));
        }
    }
    Ok(format!(
        "custody block {} | anvil block {eth} | bcoin block {btc} | {} | mempool {}",
        s.height,
        totals.join(" | "),
        s.mempool_size
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_trimmed() {
        assert_eq!(fmt_units(Asset::METH, 1_000_000_000_000_000_000), "1");
        assert_eq!(fmt_units(Asset::METH, 1_500_000_000_000_000_000), "1.5");
        assert_eq!(fmt_units(Asset::MBTC, 99_999_000), "0.99999");
        assert_eq!(fmt_units(Asset::MBTC, 0), "0");
        assert_eq!(fmt_amount(Asset::MBTC, 1), "0.00000001 mBTC");
    }
}
