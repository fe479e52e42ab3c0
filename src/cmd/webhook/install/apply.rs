//! `install --apply` and `uninstall --apply`: the objects sent through kube (kubeconfig or
//! in-cluster), server-side apply with field manager `airlock` so a second run changes nothing,
//! deletion tolerant of objects already gone.

use anyhow::Context;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

/// The field manager of every applied object.
const MANAGER: &str = "airlock";

/// The API of one object, and its name.
fn api_for(client: &kube::Client, obj: &Value) -> anyhow::Result<(Api<DynamicObject>, String)> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    // The plural of every kind install makes is its lower-case name plus `s`, except these.
    let plural = match kind {
        "PodDisruptionBudget" => "poddisruptionbudgets".to_string(),
        other => format!("{}s", other.to_ascii_lowercase()),
    };
    let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
    let name = obj["metadata"]["name"]
        .as_str()
        .context("object without a name")?
        .to_string();
    let api = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    Ok((api, name))
}

pub async fn apply(objects: &[Value]) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes API client (kubeconfig or in-cluster service account)")?;
    let params = PatchParams::apply(MANAGER).force();
    for obj in objects {
        let (api, name) = api_for(&client, obj)?;
        api.patch(&name, &params, &Patch::Apply(obj))
            .await
            .with_context(|| format!("cannot apply {} {name}", obj["kind"]))?;
        eprintln!("applied {} {name}", obj["kind"].as_str().unwrap_or(""));
    }
    Ok(())
}

pub async fn delete(objects: &[Value]) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes API client (kubeconfig or in-cluster service account)")?;
    for obj in objects {
        let (api, name) = api_for(&client, obj)?;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => eprintln!("deleted {} {name}", obj["kind"].as_str().unwrap_or("")),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot delete {} {name}", obj["kind"]));
            }
        }
    }
    Ok(())
}
