//! The problem+json answers of the OpenAPI document.
//!
//! Handlers list the errors they produce themselves (`body = Problem`). The errors
//! that the auth gate and the extractors produce are the same on every route, so
//! they are added here, from what each operation is: its security, its method, its
//! parameters and its body. Every 4xx/5xx whose body is a `Problem` is then documented
//! as `application/problem+json`, the content type `AppError` sends.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

const PROBLEM_JSON: &str = "application/problem+json";

/// Completes the error responses of every operation in the document.
pub fn document(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        for (reads, op) in [
            (true, &mut item.get),
            (false, &mut item.put),
            (false, &mut item.post),
            (false, &mut item.delete),
            (false, &mut item.patch),
        ] {
            if let Some(op) = op {
                add_common_errors(op, reads);
                problem_content_type(op);
            }
        }
    }
}

/// The errors any request to `op` can meet before its handler runs.
fn add_common_errors(op: &mut Operation, reads: bool) {
    let public = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
    add(
        op,
        401,
        if public {
            "the Authorization header names no valid token"
        } else {
            "no credentials, or an unknown or revoked token"
        },
    );
    if !reads {
        add(
            op,
            403,
            "the token's scope does not allow this request, or a cookie session sent it \
             cross-site",
        );
    }
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = op.request_body.is_some();
    if has_params || has_body {
        add(
            op,
            400,
            "a malformed path or query parameter, or a body that is not JSON sent as \
             application/json",
        );
    }
    if has_body {
        add(op, 413, "the body is larger than 64 KiB");
        add(
            op,
            422,
            "a body field of the wrong type or out of range; `errors` names it",
        );
    }
}

/// Adds a `Problem` response unless the operation documents that status already.
fn add(op: &mut Operation, status: u16, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            let mut response = Response::new(description);
            response.content.insert(
                PROBLEM_JSON.to_string(),
                RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))),
            );
            RefOr::T(response)
        });
}

/// `body = Problem` responses are documented as `application/json` by utoipa; a
/// response without a description gets a generic one (OpenAPI requires it).
fn problem_content_type(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if response.description.is_empty() {
            response.description = default_description(status).to_string();
        }
        if !status.starts_with(['4', '5']) {
            continue;
        }
        let is_problem = matches!(
            response.content.get("application/json"),
            Some(RefOr::T(Content { schema: Some(RefOr::Ref(r)), .. }))
                if r.ref_location == "#/components/schemas/Problem"
        );
        if is_problem && let Some(content) = response.content.shift_remove("application/json") {
            response.content.insert(PROBLEM_JSON.to_string(), content);
        }
    }
}

fn default_description(status: &str) -> &'static str {
    match status {
        "204" => "done; no body",
        "400" => "a malformed request",
        "404" => "no such resource",
        "409" => "the request conflicts with the current state",
        "422" => "invalid fields; `errors` names them",
        "503" => "systemd is unreachable",
        _ => "an error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        let (_, openapi) = super::super::router();
        serde_json::to_value(&openapi).unwrap()
    }

    fn operations(doc: &serde_json::Value) -> Vec<(String, &serde_json::Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((format!("{} {path}", method.to_uppercase()), op));
            }
        }
        out
    }

    #[test]
    fn every_error_is_problem_json_with_a_description() {
        let doc = doc();
        for (name, op) in operations(&doc) {
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{name} {status} has no description"
                );
                if status.starts_with('4') {
                    let content = response["content"].as_object().unwrap();
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        [PROBLEM_JSON],
                        "{name} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_gate_and_extractor_errors_are_documented() {
        let doc = doc();
        for (name, op) in operations(&doc) {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("401"), "{name}");
            assert_eq!(
                responses.contains_key("403"),
                !name.starts_with("GET "),
                "{name}"
            );
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "422"] {
                    assert!(responses.contains_key(status), "{name} {status}");
                }
            }
        }
        let login = &doc["paths"]["/api/v1/session"]["post"]["responses"];
        assert!(login["429"].is_object());
    }
}
