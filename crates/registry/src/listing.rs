//! Listing: the tags list and `_catalog`, with `n` / `last` pagination.

use std::collections::HashMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci_store::Store;

use crate::{ApiError, Registry, Result, hv};

/// `n` / `last` pagination of a sorted list; the `Link` of the next page when there is one.
fn paginate(
    all: Vec<String>,
    query: &HashMap<String, String>,
    path: &str,
) -> Result<(Vec<String>, Option<String>)> {
    let n = match query.get("n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("invalid n {n:?}"),
            )
        })?),
        None => None,
    };
    let after: Vec<String> = match query.get("last") {
        Some(last) => all.into_iter().filter(|t| t > last).collect(),
        None => all,
    };
    match n {
        Some(n) if after.len() > n => {
            let page: Vec<String> = after.into_iter().take(n).collect();
            let link = page
                .last()
                .map(|l| format!("<{path}?n={n}&last={l}>; rel=\"next\""));
            Ok((page, link))
        }
        _ => Ok((after, None)),
    }
}

fn json_list(key: &str, name: Option<&str>, items: Vec<String>, link: Option<String>) -> Response {
    let mut body = serde_json::Map::new();
    if let Some(name) = name {
        body.insert("name".into(), name.into());
    }
    body.insert(key.into(), items.into());
    let mut r = axum::Json(serde_json::Value::Object(body)).into_response();
    if let Some(link) = link {
        r.headers_mut().insert(header::LINK, hv(&link));
    }
    r
}

pub(crate) async fn catalog<S: Store>(
    reg: &Registry<S>,
    query: &HashMap<String, String>,
) -> Result<Response> {
    let all = reg
        .store
        .repositories()
        .await
        .map_err(ApiError::from_store)?;
    let (page, link) = paginate(all, query, "/v2/_catalog")?;
    Ok(json_list("repositories", None, page, link))
}

pub(crate) async fn tags<S: Store>(
    reg: &Registry<S>,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response> {
    let all = reg.store.tags(name).await.map_err(ApiError::from_store)?;
    if all.is_empty()
        && reg
            .store
            .manifests(name)
            .await
            .map_err(ApiError::from_store)?
            .is_empty()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {name} not known to this registry"),
        ));
    }
    let (page, link) = paginate(all, query, &format!("/v2/{name}/tags/list"))?;
    Ok(json_list("tags", Some(name), page, link))
}
