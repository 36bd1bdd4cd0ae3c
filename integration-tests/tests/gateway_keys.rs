//! The API key lifecycle on the admin API: list (never a secret), create (optionally
//! expiring), revoke and rotate, each with its audit row; revocation reaching every gateway
//! within a second; expired keys refused.

use axum::http::{Method, StatusCode};
use integration_tests::gateway::{spawn_gateway, GatewayApp};
use integration_tests::{scalar, wait_for};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What a listed key may show, and nothing else.
const LISTED_FIELDS: [&str; 10] = [
    "created_at",
    "expires_at",
    "id",
    "last_used_at",
    "name",
    "prefix",
    "revoked_at",
    "role",
    "rotated_from",
    "state",
];

async fn status_with(app: &GatewayApp, key: &str) -> StatusCode {
    app.request(Method::GET, "/v1/categories", Some(key), &[], None)
        .await
        .status
}

async fn admin(app: &GatewayApp, method: Method, path: &str, body: Option<Value>) -> Value {
    let answer = app
        .request(method, path, Some(&app.admin_key), &[], body)
        .await;
    assert!(
        answer.status.is_success(),
        "{path}: {} {}",
        answer.status,
        answer.text()
    );
    answer.json()
}

async fn key_id(app: &GatewayApp, name: &str) -> i64 {
    app.db()
        .await
        .query_one(
            "SELECT id FROM api_keys WHERE name = $1 ORDER BY id LIMIT 1",
            &[&name],
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .get(0)
}

#[tokio::test]
async fn admins_create_list_revoke_and_rotate_keys_with_an_audit_row_each() {
    let app = spawn_gateway(&[]).await;
    let forbidden = app
        .request(
            Method::GET,
            "/v1/admin/keys",
            Some(&app.analyst_key),
            &[],
            None,
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    // Create: the key is shown once, in an answer no cache keeps.
    let created = app
        .request(
            Method::POST,
            "/v1/admin/keys",
            Some(&app.admin_key),
            &[],
            Some(json!({"role": "analyst", "name": "ops laptop", "expires_in": "30d"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let created = created.json();
    let new_key = created["key"].as_str().expect("key").to_owned();
    let new_id = created["id"].as_i64().expect("id");
    assert_eq!(created["prefix"], new_key[..8]);
    assert_eq!(created["state"], "active");
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(created["expires_at"].clone()).expect("expires_at");
    let in_30_days = chrono::Utc::now() + chrono::Duration::days(30);
    assert!((expires - in_30_days).num_seconds().abs() < 60, "{expires}");
    assert_eq!(status_with(&app, &new_key).await, StatusCode::OK);

    // List: every key, never a secret.
    let listed = app
        .request(
            Method::GET,
            "/v1/admin/keys",
            Some(&app.admin_key),
            &[],
            None,
        )
        .await;
    for secret in [&new_key, &app.admin_key, &app.analyst_key] {
        assert!(
            !listed.text().contains(secret.as_str()),
            "a secret is listed"
        );
    }
    let listed = listed.json();
    let keys = listed["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 3);
    for key in keys {
        let mut fields: Vec<&str> = key
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        fields.sort_unstable();
        assert_eq!(fields, LISTED_FIELDS);
    }
    let mine = keys.iter().find(|k| k["id"] == new_id).expect("listed");
    assert_eq!(mine["name"], "ops laptop");
    assert!(mine["last_used_at"].is_string(), "used once above: {mine}");

    // Revoke: refused at once on this gateway; revoking again changes nothing.
    let path = format!("/v1/admin/keys/{new_id}/revoke");
    let revoked = admin(&app, Method::POST, &path, None).await;
    assert_eq!(revoked["newly_revoked"], true);
    assert_eq!(revoked["state"], "revoked");
    let refused = app
        .request(Method::GET, "/v1/categories", Some(&new_key), &[], None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.text().contains("revoked"), "{}", refused.text());
    let again = admin(&app, Method::POST, &path, None).await;
    assert_eq!(again["newly_revoked"], false);

    // Rotate: a new secret with the same name and role; the old key stops working.
    let analyst_id = key_id(&app, "test analyst").await;
    let rotated = app
        .request(
            Method::POST,
            &format!("/v1/admin/keys/{analyst_id}/rotate"),
            Some(&app.admin_key),
            &[],
            // The body is optional; `null` is no body.
            Some(Value::Null),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    let rotated = rotated.json();
    let rotated_key = rotated["key"].as_str().expect("key").to_owned();
    assert_ne!(rotated_key, app.analyst_key);
    assert_eq!(rotated["name"], "test analyst");
    assert_eq!(rotated["role"], "analyst");
    assert_eq!(rotated["rotated_from"], analyst_id);
    assert_eq!(
        status_with(&app, &app.analyst_key).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_with(&app, &rotated_key).await, StatusCode::OK);

    // Refusals.
    for (path, body, status) in [
        (format!("/v1/admin/keys/{new_id}/rotate"), None, 409),
        ("/v1/admin/keys/987654/revoke".to_owned(), None, 404),
        ("/v1/admin/keys/abc/revoke".to_owned(), None, 400),
        (
            "/v1/admin/keys".to_owned(),
            Some(json!({"role": "analyst", "expires_in": "soon"})),
            400,
        ),
        (
            "/v1/admin/keys".to_owned(),
            Some(json!({"role": "root"})),
            400,
        ),
    ] {
        let answer = app
            .request(Method::POST, &path, Some(&app.admin_key), &[], body)
            .await;
        assert_eq!(answer.status.as_u16(), status, "{path}: {}", answer.text());
    }

    // One audit row per action, naming who did it.
    let rows = app
        .db()
        .await
        .query(
            "SELECT key_id, action, actor, detail FROM api_key_audit WHERE actor <> 'altdata' ORDER BY id",
            &[],
        )
        .await
        .expect("audit");
    let actions: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        actions,
        [
            (new_id, "create".to_owned()),
            (new_id, "revoke".to_owned()),
            (analyst_id, "rotate".to_owned()),
        ]
    );
    let actor: String = rows[0].get(2);
    assert!(actor.starts_with("test admin (adx_"), "{actor}");
    let detail: Value = rows[2].get(3);
    assert_eq!(detail["new_key_id"], rotated["id"]);
}

#[tokio::test]
async fn an_expired_key_is_refused_with_a_clear_message_even_when_cached() {
    let app = spawn_gateway(&[]).await;
    let created = admin(
        &app,
        Method::POST,
        "/v1/admin/keys",
        Some(json!({"role": "analyst", "name": "short-lived", "expires_in": "1m"})),
    )
    .await;
    let key = created["key"].as_str().expect("key").to_owned();
    assert_eq!(status_with(&app, &key).await, StatusCode::OK);
    // The key is cached for 30 s; its expiry, brought forward to a second from now, is
    // checked on every request all the same.
    let id = created["id"].as_i64().expect("id");
    app.db()
        .await
        .execute(
            "UPDATE api_keys SET expires_at = now() + interval '1 second' WHERE id = $1",
            &[&id],
        )
        .await
        .expect("expire");
    app.state.inner.keys.forget(id);
    assert_eq!(status_with(&app, &key).await, StatusCode::OK, "still valid");
    let refused = wait_for("the key to expire", Duration::from_secs(5), || async {
        let answer = app
            .request(Method::GET, "/v1/categories", Some(&key), &[], None)
            .await;
        (answer.status == StatusCode::UNAUTHORIZED).then_some(answer)
    })
    .await;
    assert!(refused.text().contains("expired"), "{}", refused.text());
    let listed = admin(&app, Method::GET, "/v1/admin/keys", None).await;
    let entry = listed["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["id"] == id).cloned())
        .expect("listed");
    assert_eq!(entry["state"], "expired");
    // Rotating an expired key needs a new lifetime.
    let path = format!("/v1/admin/keys/{id}/rotate");
    let conflict = app
        .request(Method::POST, &path, Some(&app.admin_key), &[], None)
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    let renewed = admin(&app, Method::POST, &path, Some(json!({"expires_in": "7d"}))).await;
    let renewed_key = renewed["key"].as_str().expect("key");
    assert_eq!(status_with(&app, renewed_key).await, StatusCode::OK);
}

#[tokio::test]
async fn a_revocation_reaches_a_second_gateway_within_a_second() {
    // A cache that would trust a key for an hour: only the revocation message can make the
    // second gateway refuse it in time.
    let app = spawn_gateway(&[("ALTDATA_API_KEY_CACHE_TTL", "1h")]).await;
    let first = app.serve(&[]).await;
    let second = app.serve(&[]).await;
    let analyst_id = key_id(&app, "test analyst").await;
    let get = |router: axum::Router, key: String| async move {
        let request = axum::http::Request::builder()
            .uri("/v1/categories")
            .header("authorization", format!("Bearer {key}"))
            .body(axum::body::Body::empty())
            .expect("request");
        tower::ServiceExt::oneshot(router, request)
            .await
            .expect("infallible")
            .status()
    };
    let on_second = |key: &str| get(second.router.clone(), key.to_owned());
    assert_eq!(on_second(&app.analyst_key).await, StatusCode::OK);
    assert!(second.state.inner.keys.holds(analyst_id));

    let admin_post = |path: String| {
        let router = first.router.clone();
        let key = app.admin_key.clone();
        async move {
            let request = axum::http::Request::builder()
                .method("POST")
                .uri(path)
                .header("authorization", format!("Bearer {key}"))
                .body(axum::body::Body::empty())
                .expect("request");
            let response = tower::ServiceExt::oneshot(router, request)
                .await
                .expect("infallible");
            assert_eq!(response.status(), StatusCode::OK);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            serde_json::from_slice::<Value>(&body).expect("json")
        }
    };

    // Rotation on the first gateway: the second refuses the old key within a second and
    // accepts the new one.
    let rotated = admin_post(format!("/v1/admin/keys/{analyst_id}/rotate")).await;
    assert_eq!(rotated["revocation_announced"], true);
    let started = Instant::now();
    wait_for(
        "the second gateway to refuse the rotated key",
        Duration::from_secs(1),
        || async { (on_second(&app.analyst_key).await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    println!(
        "rotated key refused by the second gateway after {:?}",
        started.elapsed()
    );
    let new_key = rotated["key"].as_str().expect("key").to_owned();
    assert_eq!(on_second(&new_key).await, StatusCode::OK);

    // Revocation of the new key on the first gateway: the same.
    let new_id = rotated["id"].as_i64().expect("id");
    assert!(second.state.inner.keys.holds(new_id));
    let revoked = admin_post(format!("/v1/admin/keys/{new_id}/revoke")).await;
    assert_eq!(revoked["revocation_announced"], true);
    let started = Instant::now();
    wait_for(
        "the second gateway to refuse the revoked key",
        Duration::from_secs(1),
        || async { (on_second(&new_key).await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    println!(
        "revoked key refused by the second gateway after {:?}",
        started.elapsed()
    );
    let audited: i64 = scalar(
        &app.db().await,
        "SELECT count(*) FROM api_key_audit WHERE action IN ('rotate', 'revoke')",
    )
    .await;
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn the_openapi_document_describes_the_key_routes() {
    let app = spawn_gateway(&[]).await;
    let doc = app
        .request(Method::GET, "/openapi.json", None, &[], None)
        .await
        .json();
    for (path, method) in [
        ("/v1/admin/keys", "get"),
        ("/v1/admin/keys", "post"),
        ("/v1/admin/keys/{id}/revoke", "post"),
        ("/v1/admin/keys/{id}/rotate", "post"),
    ] {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} missing");
        assert_eq!(operation["security"], json!([{"bearer": []}]), "{path}");
    }
    let listed = &doc["components"]["schemas"]["KeyInfo"]["properties"];
    assert!(listed.get("key").is_none(), "a listed key has no secret");
    assert!(doc["components"]["schemas"]["NewKey"].is_object());
}

#[tokio::test]
async fn the_bootstrap_admin_key_is_installed_once_and_never_revived() {
    use altdata_gateway::auth::store::install_bootstrap_key;
    let app = spawn_gateway(&[]).await;
    let key = "adx_0123456789abcdefABCDEF0123456789";
    let mut client = app.test_app.client().await;
    assert!(
        install_bootstrap_key(&mut client, "CHANGE-ME-prod-bootstrap-admin-key")
            .await
            .is_err_and(|e| e.to_string().contains("ALTDATA_BOOTSTRAP_ADMIN_KEY"))
    );
    assert_eq!(status_with(&app, key).await, StatusCode::UNAUTHORIZED);
    assert!(install_bootstrap_key(&mut client, key)
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    // An admin: it lists the keys.
    let listed = app
        .request(Method::GET, "/v1/admin/keys", Some(key), &[], None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let id = key_id(&app, "bootstrap").await;
    let audited: i64 = scalar(
        &client,
        &format!("SELECT count(*) FROM api_key_audit WHERE key_id = {id} AND actor = 'bootstrap'"),
    )
    .await;
    assert_eq!(audited, 1);
    // The next migration finds it; once revoked, it stays revoked.
    assert!(!install_bootstrap_key(&mut client, key)
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    admin(
        &app,
        Method::POST,
        &format!("/v1/admin/keys/{id}/revoke"),
        None,
    )
    .await;
    assert!(!install_bootstrap_key(&mut client, key)
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    wait_for(
        "the revoked bootstrap key refused",
        Duration::from_secs(5),
        || async { (status_with(&app, key).await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
}
