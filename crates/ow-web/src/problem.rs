//! JSON error bodies for the API (`application/problem+json`, after RFC 9457).
//!
//! ```json
//! {"status": 422, "code": "upload.not_allowed",
//!  "message": "文件\"x.pdf\"不是 PDF、JPEG 或 PNG 文件（检测为：Windows 可执行文件），请重新上传",
//!  "detail": "the file \"x.pdf\" is not a PDF, JPEG or PNG file …"}
//! ```
//!
//! `code` is stable and meant for programs; `message` is Chinese and meant for people; `detail`
//! is optional English detail. Never put internal errors, stack traces or personal data in
//! either: log them (without personal data) and answer [`ApiProblem::internal`].

use std::borrow::Cow;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::csrf::CsrfError;
use crate::lockout::Locked;
use crate::password::{PasswordHashError, PasswordPolicyError};
use crate::totp::TotpError;
use crate::upload::UploadError;

/// The content type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An API error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiProblem {
    /// HTTP status code.
    pub status: u16,
    /// Stable machine-readable code, such as `csrf.mismatch`.
    pub code: Cow<'static, str>,
    /// What went wrong and what to do, in Chinese.
    pub message: String,
    /// Optional further detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ApiProblem {
    /// A problem with the given status, code and Chinese message.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status: status.as_u16(),
            code: code.into(),
            message: message.into(),
            detail: None,
        }
    }

    /// The same problem with `detail` set.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: not logged in or the session ended.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "登录已失效，请重新登录",
        )
    }

    /// 403: logged in but not allowed.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "您没有权限进行此操作，如有疑问请联系管理员",
        )
    }

    /// 404: nothing there (also for things the caller may not see).
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "未找到相关内容，请检查后重试",
        )
    }

    /// 409: conflicts with the current state (such as a case already submitted).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 429: too many requests.
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "操作过于频繁，请稍后再试",
        )
    }

    /// 500: an internal error, with nothing about it in the body.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误，请稍后重试；如问题持续存在，请联系客服",
        )
    }

    /// The status as a [`StatusCode`] (500 if `status` is not a valid code).
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiProblem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        match serde_json::to_vec(&self) {
            Ok(body) => {
                let mut resp = (status, body).into_response();
                resp.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
                resp
            }
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

impl From<CsrfError> for ApiProblem {
    fn from(e: CsrfError) -> Self {
        let code = match e {
            CsrfError::Missing => "csrf.missing",
            CsrfError::Mismatch => "csrf.mismatch",
            CsrfError::CrossOrigin => "csrf.cross_origin",
        };
        Self::new(StatusCode::FORBIDDEN, code, e.message_zh()).with_detail(e.to_string())
    }
}

impl From<UploadError> for ApiProblem {
    fn from(e: UploadError) -> Self {
        let (status, code) = match e {
            UploadError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "upload.too_large"),
            UploadError::TooManyFiles { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "upload.too_many_files")
            }
            UploadError::Empty { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "upload.empty"),
            _ => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "upload.not_allowed"),
        };
        Self::new(status, code, e.message_zh()).with_detail(e.to_string())
    }
}

impl From<PasswordPolicyError> for ApiProblem {
    fn from(e: PasswordPolicyError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "password.policy",
            e.message_zh(),
        )
        .with_detail(e.to_string())
    }
}

impl From<PasswordHashError> for ApiProblem {
    fn from(e: PasswordHashError) -> Self {
        match e {
            PasswordHashError::MalformedHash => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "password.malformed_hash",
                e.message_zh(),
            ),
            PasswordHashError::Busy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server.busy",
                e.message_zh(),
            )
            .with_detail(e.to_string()),
            _ => Self::internal(),
        }
    }
}

impl From<Locked> for ApiProblem {
    fn from(e: Locked) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "account.locked",
            e.message_zh(),
        )
        .with_detail(e.to_string())
    }
}

impl From<TotpError> for ApiProblem {
    fn from(e: TotpError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "totp.invalid",
            e.message_zh(),
        )
        .with_detail(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body_json(resp: Response) -> serde_json::Value {
        let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn renders_problem_json() {
        let p = ApiProblem::new(
            StatusCode::CONFLICT,
            "case.submitted",
            "申请已提交，不能修改",
        )
        .with_detail("the case was already submitted");
        let resp = p.into_response();
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(resp.headers()[CONTENT_TYPE], PROBLEM_JSON);
        let v = body_json(resp).await;
        assert_eq!(
            v,
            serde_json::json!({
                "status": 409,
                "code": "case.submitted",
                "message": "申请已提交，不能修改",
                "detail": "the case was already submitted"
            })
        );
    }

    #[tokio::test]
    async fn detail_is_omitted_when_absent_and_bad_status_is_500() {
        let v = body_json(ApiProblem::not_found().into_response()).await;
        assert!(v.get("detail").is_none());
        assert_eq!(v["code"], "not_found");
        let p = ApiProblem {
            status: 42,
            code: "x".into(),
            message: "x".into(),
            detail: None,
        };
        assert_eq!(
            p.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn conversions_from_crate_errors() {
        let p = ApiProblem::from(CsrfError::Mismatch);
        assert_eq!((p.status, p.code.as_ref()), (403, "csrf.mismatch"));
        let p = ApiProblem::from(UploadError::TooLarge {
            filename: None,
            size: 20 << 20,
            limit: 10 << 20,
        });
        assert_eq!((p.status, p.code.as_ref()), (413, "upload.too_large"));
        assert!(
            p.message
                .starts_with("文件过大（20 MB），单个文件不能超过 10 MB"),
            "{}",
            p.message
        );
        let p = ApiProblem::from(PasswordPolicyError::ControlCharacter);
        assert_eq!(p.status, 422);
        let p = ApiProblem::from(PasswordHashError::Hash("oom".into()));
        assert_eq!(p, ApiProblem::internal());
        assert!(p.detail.is_none());
    }
}
