//! The OpenAPI 3.1 document of the JSON API (utoipa), served at `/api/v1/openapi.json`.
//!
//! The handlers' annotations give each operation its own answers; [`document_json`] then adds
//! what every operation shares, so no annotation can forget it: error bodies are
//! `application/problem+json`; an operation that takes a body also answers 400 (malformed),
//! 413 (too large) and 415 (wrong media type); an operation that answers 401 needs the session
//! cookie (security scheme `session`).

use serde_json::{Value, json};
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
            application/problem+json ({status, code, message, detail}; message in Chinese for \
            people, code stable for programs), including 400 for malformed JSON, 413 for a body \
            over the limit, 415 for a wrong Content-Type and 405 for an unsupported method. A \
            citizen sees only their own applications and certificates: anything else is 404."
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

/// The media type of error bodies.
pub const PROBLEM_JSON: &str = ow_web::problem::PROBLEM_JSON;

/// The operations' own annotations, before [`document_json`] adds the shared answers.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The shared answers every operation may give because of its request's shape.
fn shared_responses() -> Value {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}
        })
    };
    json!({
        "BadRequest": problem("The body is not valid JSON, lacks a required member or has one \
            of the wrong type (code bad_request.json_syntax or bad_request.json_fields), or a \
            multipart body is malformed (bad_request)."),
        "PayloadTooLarge": problem("The body is over the limit (payload_too_large), or an \
            uploaded file is (upload.too_large, upload.too_many_files)."),
        "UnsupportedMediaType": problem("The Content-Type is not the one the operation takes \
            (unsupported_media_type), or an uploaded file is not PDF, JPEG or PNG \
            (upload.not_allowed)."),
    })
}

/// The document as served: [`document`] with error bodies as `application/problem+json`, the
/// 400/413/415 answers of every operation that takes a body, and the session cookie as the
/// security scheme of every operation that answers 401.
pub fn document_json() -> Value {
    let mut doc = serde_json::to_value(document()).unwrap_or_else(|_| json!({}));
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method) {
                    complete_operation(op);
                }
            }
        }
    }
    let components = &mut doc["components"];
    components["responses"] = shared_responses();
    components["securitySchemes"] = json!({
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": "ow_session",
            "description": "The session cookie set by POST /api/v1/login (named \
                __Host-ow_session when the portal runs over HTTPS). Writes also need the \
                X-CSRF-Token header."
        }
    });
    doc
}

fn complete_operation(op: &mut Value) {
    let takes_body = op.get("requestBody").is_some();
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let statuses: Vec<String> = responses.keys().cloned().collect();
    for status in &statuses {
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if let Some(content) = responses[status]
            .get_mut("content")
            .and_then(Value::as_object_mut)
            && let Some(body) = content.remove("application/json")
        {
            content.insert(PROBLEM_JSON.to_owned(), body);
        }
    }
    if takes_body {
        for (status, name) in [
            ("400", "BadRequest"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
        ] {
            responses
                .entry(status)
                .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
        }
    }
    let needs_session = responses.contains_key("401");
    if needs_session {
        op["security"] = json!([{"session": []}]);
    }
}

/// Every (method, path) in the document, lower-case method.
pub fn documented_routes() -> Vec<(String, String)> {
    let doc = document_json();
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if item.get(method).is_some() {
                    out.push((method.to_owned(), path.clone()));
                }
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
        let json = document_json();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
    }

    #[test]
    fn errors_are_problems_and_bodies_may_be_refused_for_their_shape() {
        let doc = document_json();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let responses = op["responses"].as_object().unwrap();
                for (status, response) in responses {
                    if status.starts_with('2') {
                        continue;
                    }
                    if let Some(content) = response.get("content") {
                        let types: Vec<&String> = content.as_object().unwrap().keys().collect();
                        assert_eq!(types, [PROBLEM_JSON], "{method} {path} {status}");
                        checked += 1;
                    }
                }
                if op.get("requestBody").is_some() {
                    for status in ["400", "413", "415"] {
                        assert!(responses.contains_key(status), "{method} {path} {status}");
                    }
                }
                if responses.contains_key("401") {
                    assert_eq!(op["security"], json!([{"session": []}]), "{method} {path}");
                }
            }
        }
        assert!(checked >= 20, "{checked}");
        let verify = &doc["components"]["schemas"]["VerifyRequest"]["properties"];
        assert_eq!(verify["certificate_number"]["maxLength"], 64);
        assert_eq!(verify["code"]["maxLength"], 32);
        for name in ["BadRequest", "PayloadTooLarge", "UnsupportedMediaType"] {
            assert!(doc["components"]["responses"][name].is_object(), "{name}");
        }
    }
}
