//! Waiting for the operator's stop: Ctrl-C, or SIGTERM on Unix (systemd, `kill`).

/// Resolves on Ctrl-C or SIGTERM. If SIGTERM cannot be watched, says so (naming `what`
/// stops) and waits for Ctrl-C alone.
pub async fn stop_requested(what: &str) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops {what}");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (ctrl_c.await, what);
    }
}
