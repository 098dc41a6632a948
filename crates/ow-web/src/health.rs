//! Health checks: the `/healthz` handler and the client that the zone binaries'
//! `healthcheck` subcommand (and container health checks) run.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ow_web::health::HealthError> {
//! use axum::{Router, routing::get};
//! let app: Router = Router::new().route("/healthz", get(ow_web::health::healthz));
//! ow_web::health::healthcheck("http://127.0.0.1:8080", std::time::Duration::from_secs(3)).await?;
//! # Ok(()) }
//! ```
//!
//! The client speaks plain HTTP only (no TLS is compiled in): point it at the server's local
//! listen address, not at the public HTTPS name.

use std::time::Duration;

use axum::http::StatusCode;

/// The path checked.
pub const HEALTHZ_PATH: &str = "/healthz";

/// Why a health check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// The URL cannot be used.
    #[error("health check URL {url:?} is not usable ({reason}); give it as http://HOST:PORT")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// No answer within the timeout.
    #[error(
        "{url} did not answer within {timeout:?}; check that the server is running and not overloaded"
    )]
    Timeout {
        /// The URL checked.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// No connection or a broken answer.
    #[error("cannot reach {url}: {reason}; check that the server is running and listening there")]
    Unreachable {
        /// The URL checked.
        url: String,
        /// What the client reported.
        reason: String,
    },
    /// An answer other than 200.
    #[error("{url} answered {status} instead of 200 OK; see the server's log")]
    Status {
        /// The URL checked.
        url: String,
        /// The status received.
        status: u16,
    },
    /// [`healthcheck_blocking`] was called where it cannot run.
    #[error(
        "the health check could not start its runtime ({0}); call the async healthcheck instead"
    )]
    Runtime(String),
}

impl HealthError {
    /// A short Chinese message for the operator.
    pub fn message_zh(&self) -> String {
        match self {
            Self::BadUrl { url, .. } => {
                format!("健康检查地址 {url} 不正确，请写成 http://主机:端口")
            }
            Self::Timeout { url, .. } => {
                format!("{url} 在规定时间内没有响应，请检查服务是否在运行")
            }
            Self::Unreachable { url, .. } => {
                format!("无法连接 {url}，请检查服务是否在运行并监听该地址")
            }
            Self::Status { url, status } => {
                format!("{url} 返回状态码 {status}（应为 200），请查看服务日志")
            }
            Self::Runtime(_) => "健康检查无法启动，请改用异步接口".into(),
        }
    }
}

/// The `/healthz` handler: `200 ok`. It means the process serves requests; it does not check
/// the database or the ferry (those have their own status pages).
pub async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok")
}

/// `GET {base_url}/healthz`, expecting 200 within `timeout`.
pub async fn healthcheck(base_url: &str, timeout: Duration) -> Result<(), HealthError> {
    let base = base_url.trim().trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(HealthError::BadUrl {
            url: base_url.to_owned(),
            reason: "only http:// URLs are supported".into(),
        });
    }
    let url = format!("{base}{HEALTHZ_PATH}");
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| HealthError::Runtime(e.to_string()))?;
    let response = client.get(&url).send().await.map_err(|e| {
        if e.is_timeout() {
            HealthError::Timeout {
                url: url.clone(),
                timeout,
            }
        } else if e.is_builder() {
            HealthError::BadUrl {
                url: base_url.to_owned(),
                reason: error_chain(&e),
            }
        } else {
            HealthError::Unreachable {
                url: url.clone(),
                reason: error_chain(&e),
            }
        }
    })?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(HealthError::Status {
            url,
            status: status.as_u16(),
        });
    }
    Ok(())
}

/// [`healthcheck`] for synchronous callers (a `healthcheck` subcommand before any runtime
/// exists). Starts a single-threaded runtime; refuses to run inside one.
pub fn healthcheck_blocking(base_url: &str, timeout: Duration) -> Result<(), HealthError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(HealthError::Runtime(
            "already inside a tokio runtime".into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HealthError::Runtime(e.to_string()))?;
    runtime.block_on(healthcheck(base_url, timeout))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn healthy_server_passes() {
        let base = serve(Router::new().route(HEALTHZ_PATH, get(healthz))).await;
        healthcheck(&base, Duration::from_secs(5)).await.unwrap();
        healthcheck(&format!("{base}/"), Duration::from_secs(5))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn non_200_fails_with_the_status() {
        let app = Router::new().route(
            HEALTHZ_PATH,
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "starting") }),
        );
        let base = serve(app).await;
        let err = healthcheck(&base, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(err, HealthError::Status { status: 503, .. }),
            "{err:?}"
        );
        let base = serve(Router::new()).await;
        let err = healthcheck(&base, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(err, HealthError::Status { status: 404, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = healthcheck(&format!("http://{addr}"), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, HealthError::Unreachable { .. }), "{err:?}");
        assert!(err.message_zh().contains("无法连接"));
    }

    #[tokio::test]
    async fn slow_server_times_out() {
        let app = Router::new().route(
            HEALTHZ_PATH,
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "ok"
            }),
        );
        let base = serve(app).await;
        let err = healthcheck(&base, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, HealthError::Timeout { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        for url in ["https://example.gov.cn", "127.0.0.1:8080", ""] {
            let err = healthcheck(url, Duration::from_secs(1)).await.unwrap_err();
            assert!(matches!(err, HealthError::BadUrl { .. }), "{url}: {err:?}");
        }
    }

    #[tokio::test]
    async fn blocking_refuses_inside_a_runtime() {
        let err = healthcheck_blocking("http://127.0.0.1:1", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, HealthError::Runtime(_)));
    }

    #[test]
    fn blocking_works_outside_a_runtime() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let base = rt.block_on(serve(Router::new().route(HEALTHZ_PATH, get(healthz))));
        // The server runs on `rt`'s worker threads while this thread blocks on its own runtime.
        healthcheck_blocking(&base, Duration::from_secs(5)).unwrap();
    }
}
