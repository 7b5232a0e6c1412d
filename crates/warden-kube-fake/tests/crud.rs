#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{api_error, fake, job, pod};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn job_create_get_list_patch_delete_round_trip() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");

    let created = jobs
        .create(
            &PostParams::default(),
            &job("inv-1", json!({"warden.dev/investigation": "inv-1"})),
        )
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(
        meta.uid.as_deref().is_some_and(|u| u.len() == 36),
        "uid assigned: {meta:?}"
    );
    assert_eq!(meta.generation, Some(1));
    assert!(meta.creation_timestamp.is_some());
    let rv1: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();

    // Defaulting the Job controller relies on.
    let spec = created.spec.as_ref().unwrap();
    let uid = meta.uid.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(0), "explicit value kept");
    assert_eq!(spec.completions, Some(1));
    assert_eq!(
        spec.selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["batch.kubernetes.io/controller-uid"],
        uid
    );
    let tlabels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(tlabels["job-name"], "inv-1");
    assert_eq!(tlabels["batch.kubernetes.io/job-name"], "inv-1");
    assert_eq!(tlabels["controller-uid"], uid);
    assert_eq!(tlabels["app"], "agent");

    let got = jobs.get("inv-1").await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);

    jobs.create(
        &PostParams::default(),
        &job("inv-2", json!({"warden.dev/investigation": "inv-2"})),
    )
    .await
    .unwrap();
    let listed = jobs
        .list(&ListParams::default().labels("warden.dev/investigation=inv-2"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].metadata.name.as_deref(), Some("inv-2"));
    let list_rv: u64 = listed
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(list_rv > rv1);

    let patched = jobs
        .patch(
            "inv-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"outcome": "pending"}}})),
        )
        .await
        .unwrap();
    let rv2: u64 = patched
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > list_rv, "patch bumps the resourceVersion");
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "metadata change keeps generation"
    );
    assert_eq!(patched.metadata.labels.unwrap()["outcome"], "pending");

    let deleted = jobs
        .delete("inv-1", &DeleteParams::background())
        .await
        .unwrap();
    assert!(deleted.is_right(), "background delete returns a Status");
    let err = api_error(jobs.get("inv-1").await.unwrap_err());
    assert_eq!(err.code, 404);
    assert_eq!(err.reason, "NotFound");
    assert_eq!(err.message, "jobs.batch \"inv-1\" not found");
}

#[tokio::test]
async fn duplicate_create_is_409_already_exists() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    jobs.create(&PostParams::default(), &job("dup", json!({})))
        .await
        .unwrap();
    let err = api_error(
        jobs.create(&PostParams::default(), &job("dup", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "AlreadyExists");
    assert_eq!(err.message, "jobs.batch \"dup\" already exists");
    let details = err.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("dup", "batch", "jobs")
    );
}

#[tokio::test]
async fn missing_objects_are_404_and_missing_names_422() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    let err = api_error(pods.get("nope").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "pods \"nope\" not found");
    let err = api_error(
        pods.delete("nope", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);

    let mut nameless = pod("x", json!({}));
    nameless.metadata.name = None;
    let err = api_error(
        pods.create(&PostParams::default(), &nameless)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .contains("metadata.name: Required value: name or generateName is required"),
        "{}",
        err.message
    );

    nameless.metadata.generate_name = Some("web-".into());
    let made = pods
        .create(&PostParams::default(), &nameless)
        .await
        .unwrap();
    let name = made.metadata.name.unwrap();
    assert!(
        name.starts_with("web-") && name.len() == 9,
        "generated name {name}"
    );
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_404_for_the_namespace() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "ghost");
    let err = api_error(
        pods.create(&PostParams::default(), &pod("p", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"ghost\" not found");
    // The service-account controller's default SA exists in new namespaces.
    fake.ensure_namespace("ghost").unwrap();
    assert!(
        fake.object("serviceaccounts", Some("ghost"), "default")
            .is_some()
    );
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
}

#[tokio::test]
async fn replace_with_stale_resource_version_is_409_conflict() {
    let fake = fake().await;
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "warden");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "1"}})).unwrap();
    let v1 = cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut v2 = v1.clone();
    v2.data = Some([("k".to_string(), "2".to_string())].into());
    let stored = cms.replace("c", &PostParams::default(), &v2).await.unwrap();
    assert_ne!(
        stored.metadata.resource_version,
        v1.metadata.resource_version
    );

    // v1 still carries the old resourceVersion.
    let mut stale = v1.clone();
    stale.data = Some([("k".to_string(), "3".to_string())].into());
    let err = api_error(
        cms.replace("c", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );
    assert_eq!(
        cms.get("c").await.unwrap().data.unwrap()["k"],
        "2",
        "nothing changed"
    );

    // A no-op write keeps the resourceVersion.
    let same = cms
        .replace("c", &PostParams::default(), &stored)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        stored.metadata.resource_version
    );
}

#[tokio::test]
async fn status_is_a_separate_subresource() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    jobs.create(&PostParams::default(), &job("s", json!({})))
        .await
        .unwrap();
    // A main-resource patch cannot change status.
    let after = jobs
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"active": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(after.status.unwrap().active, None);
    // The status subresource can, and leaves spec alone.
    let after = jobs
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"active": 1}, "spec": {"backoffLimit": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(after.status.unwrap().active, Some(1));
    assert_eq!(after.spec.unwrap().backoff_limit, Some(0));
    assert_eq!(after.metadata.generation, Some(1));
}

#[tokio::test]
async fn job_validation_matches_the_real_server() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    let mut bad = job("bad", json!({}));
    bad.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .restart_policy = Some("Always".into());
    let err = api_error(jobs.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("spec.template.spec.restartPolicy: Unsupported value: \"Always\""),
        "{}",
        err.message
    );
    jobs.create(&PostParams::default(), &job("ok", json!({})))
        .await
        .unwrap();
    let err = api_error(
        jobs.patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "evil:1"}]}}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("spec.template: Invalid value: field is immutable"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn label_selector_forms_filter_lists() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "web", "tier": "back"})),
        ("c", json!({"app": "db"})),
    ] {
        pods.create(&PostParams::default(), &pod(name, labels))
            .await
            .unwrap();
    }
    let names = |sel: &'static str| {
        let pods = pods.clone();
        async move {
            let mut n: Vec<String> = pods
                .list(&ListParams::default().labels(sel))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|p| p.metadata.name.unwrap())
                .collect();
            n.sort();
            n
        }
    };
    assert_eq!(names("app=web").await, ["a", "b"]);
    assert_eq!(names("app==web,tier=back").await, ["b"]);
    assert_eq!(names("app!=web").await, ["c"]);
    assert_eq!(
        names("tier!=front").await,
        ["b", "c"],
        "!= matches objects without the key"
    );
    assert_eq!(names("tier in (front,back)").await, ["a", "b"]);
    assert_eq!(names("tier notin (front)").await, ["b", "c"]);
    assert_eq!(names("tier").await, ["a", "b"]);
    assert_eq!(names("!tier").await, ["c"]);

    let fields = pods
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(fields.items.len(), 1);
    let err = api_error(
        pods.list(&ListParams::default().labels("tier in front"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
    let err = api_error(
        pods.list(&ListParams::default().fields("spec.bogus=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
    assert!(err.message.contains("field label not supported"));

    // Pagination hands out continue tokens.
    let page = pods.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().unwrap();
    let rest = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.metadata.continue_.is_none_or(|c| c.is_empty()));
}

#[tokio::test]
async fn delete_propagation_follows_owner_references() {
    let fake = fake().await;
    let jobs: Api<Job> = Api::namespaced(fake.client(), "warden");
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");

    for name in ["bg", "fg", "orphan", "default"] {
        jobs.create(&PostParams::default(), &job(name, json!({})))
            .await
            .unwrap();
        fake.create_pod_for_job("warden", name).unwrap();
    }
    let pods_of = |job: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(&format!("job-name={job}")))
                .await
                .unwrap()
                .items
        }
    };

    jobs.delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    assert!(
        pods_of("bg").await.is_empty(),
        "background deletes dependents"
    );

    let fg = jobs
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let pending = fg
        .left()
        .expect("foreground returns the object being deleted");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(
        pending
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    assert!(pods_of("fg").await.is_empty());
    assert_eq!(api_error(jobs.get("fg").await.unwrap_err()).code, 404);

    jobs.delete("orphan", &DeleteParams::orphan())
        .await
        .unwrap();
    let left = pods_of("orphan").await;
    assert_eq!(left.len(), 1, "orphan keeps pods");
    assert!(
        left[0].metadata.owner_references.is_none(),
        "and strips the owner reference"
    );

    // batch/v1 Jobs default to orphaning their pods, with a warning.
    let out = jobs
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    let pending = out
        .left()
        .expect("orphaning returns the object being deleted");
    assert_eq!(pending.metadata.finalizers.unwrap(), ["orphan"]);
    assert_eq!(pods_of("default").await.len(), 1);
    assert_eq!(
        api_error(jobs.get("default").await.unwrap_err()).code,
        404,
        "gone once orphaned"
    );
    let req = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.verb == "delete" && r.name.as_deref() == Some("default"))
        .unwrap();
    assert_eq!(req.status, 200);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let fake = fake().await;
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "warden");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "f", "finalizers": ["warden.dev/cleanup"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let out = cms.delete("f", &DeleteParams::default()).await.unwrap();
    assert!(out.left().unwrap().metadata.deletion_timestamp.is_some());
    assert!(
        cms.get("f").await.is_ok(),
        "still there while the finalizer is set"
    );
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(cms.get("f").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn deployment_scale_subresource_and_apply() {
    let fake = fake().await;
    let deps: Api<Deployment> = Api::namespaced(fake.client(), "warden");
    let dep = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
        }
    });
    // Server-side apply creates when absent (fieldManager is required).
    let err = api_error(
        deps.patch("web", &PatchParams::default(), &Patch::Apply(dep.clone()))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    let created = deps
        .patch("web", &PatchParams::apply("warden"), &Patch::Apply(dep))
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().replicas,
        Some(1),
        "defaulted"
    );

    let scale = deps.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    let scaled = deps
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(0));
    let dep = deps.get("web").await.unwrap();
    assert_eq!(dep.spec.unwrap().replicas, Some(0));
    assert_eq!(
        dep.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );

    // Selector must match the template.
    let bad: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
        }
    }))
    .unwrap();
    assert_eq!(
        api_error(deps.create(&PostParams::default(), &bad).await.unwrap_err()).code,
        422
    );
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let fake = fake().await;
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "warden");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dry"}})).unwrap();
    let rv = fake.resource_version();
    cms.create(
        &PostParams {
            dry_run: true,
            field_manager: None,
        },
        &cm,
    )
    .await
    .unwrap();
    assert!(fake.object("configmaps", Some("warden"), "dry").is_none());
    assert_eq!(fake.resource_version(), rv);
}

#[tokio::test]
async fn namespace_deletion_removes_its_contents() {
    let fake = fake().await;
    fake.ensure_namespace("tmp").unwrap();
    let pods: Api<Pod> = Api::namespaced(fake.client(), "tmp");
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(fake.client());
    nss.delete("tmp", &DeleteParams::default()).await.unwrap();
    assert!(fake.object("pods", Some("tmp"), "p").is_none());
    assert!(fake.object("namespaces", None, "tmp").is_none());
}

#[tokio::test]
async fn requests_are_recorded_with_identity_and_status() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    let _ = pods.get("missing").await;
    let r = fake.requests().pop().unwrap();
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/api/v1/namespaces/warden/pods/missing");
    assert_eq!(r.verb, "get");
    assert_eq!(r.resource.as_deref(), Some("pods"));
    assert_eq!(r.user.as_deref(), Some("system:admin"));
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn service_account_admission_checks_and_mounts_the_token() {
    let fake = fake().await;
    let pods: Api<Pod> = Api::namespaced(fake.client(), "warden");
    let mut p = pod("needs-sa", json!({}));
    p.spec.as_mut().unwrap().service_account_name = Some("agent".into());
    let err = api_error(pods.create(&PostParams::default(), &p).await.unwrap_err());
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"needs-sa\" is forbidden: error looking up service account warden/agent: serviceaccount \"agent\" not found"
    );

    // Default ServiceAccount: the API token is mounted.
    let made = pods
        .create(&PostParams::default(), &pod("mounted", json!({})))
        .await
        .unwrap();
    let spec = made.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    let mount = &spec.containers[0].volume_mounts.as_ref().unwrap()[0];
    assert_eq!(
        mount.mount_path,
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert!(spec.volumes.unwrap()[0].projected.is_some());

    // automountServiceAccountToken: false keeps it out.
    let mut quiet = pod("quiet", json!({}));
    quiet.spec.as_mut().unwrap().automount_service_account_token = Some(false);
    let made = pods.create(&PostParams::default(), &quiet).await.unwrap();
    let spec = made.spec.unwrap();
    assert!(spec.volumes.is_none_or(|v| v.is_empty()));
    assert!(
        spec.containers[0]
            .volume_mounts
            .as_ref()
            .is_none_or(|m| m.is_empty())
    );
}
