//! The OpenAPI 3.1 document of the JSON API (utoipa), served at `/api/v1/openapi.json`.

use utoipa::OpenApi;

use crate::accounts::{AccountView, RegisterInput};
use crate::api;
use crate::applications::{ApplicationForm, MaterialView, PartyInput, TimelineEntry};
use crate::certificates::{CertificateSummary, PublicView, VerifyResult};
use crate::error::FieldError;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "OneWindow citizen portal API (ow-internet)",
        version = "1",
        description = "互联网+不动产登记 网上一窗办事平台. Sign in with POST /api/v1/login: the \
            session cookie is set (HttpOnly, SameSite=Strict) and the answer carries csrf_token, \
            which every later write must send as the X-CSRF-Token header. Errors are \
            application/problem+json. A citizen sees only their own applications and \
            certificates: anything else is 404."
    ),
    paths(
        api::register,
        api::login,
        api::logout,
        api::me,
        api::list_applications,
        api::create_application,
        api::get_application,
        api::supplement,
        api::list_certificates,
        api::download_certificate,
        api::verify,
        api::openapi_json,
    ),
    components(schemas(
        RegisterInput,
        AccountView,
        ApplicationForm,
        PartyInput,
        MaterialView,
        TimelineEntry,
        CertificateSummary,
        PublicView,
        VerifyResult,
        FieldError,
        api::ProblemBody,
        api::ValidationProblem,
        api::LoginRequest,
        api::LoginResponse,
        api::RegisterResponse,
        api::ApplicationView,
        api::SubmittedResponse,
        api::SupplementResponse,
        api::VerifyRequest,
        api::ApplicationUpload,
        api::SupplementUpload,
    )),
    tags(
        (name = "accounts", description = "注册、登录、退出"),
        (name = "applications", description = "申请与补正"),
        (name = "certificates", description = "我的电子证书"),
        (name = "verify", description = "公开的证书查验"),
        (name = "meta", description = "本文档")
    )
)]
pub struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every (method, path) in the document, lower-case method.
pub fn documented_routes() -> Vec<(String, String)> {
    let doc = document();
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("get", item.get.is_some()),
            ("post", item.post.is_some()),
            ("put", item.put.is_some()),
            ("delete", item.delete.is_some()),
            ("patch", item.patch.is_some()),
        ];
        for (m, present) in ops {
            if present {
                out.push((m.to_owned(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_every_documented_path_is_routed() {
        let mut routed: Vec<(String, String)> = api::route_list()
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
            .collect();
        routed.sort();
        assert_eq!(routed, documented_routes());
        let json = serde_json::to_value(document()).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
    }
}
