//! `altdata keys create | list | rotate | revoke` with the real binary, against a running
//! gateway: lists hold no secret, every action is audited, and a rotation or revocation from
//! the command line is refused by the gateway within a second.

use integration_tests::gateway::{http, spawn_gateway, ServedGateway};
use integration_tests::{scalar, wait_for};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

fn altdata(env: &HashMap<String, String>, args: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_altdata"))
        .args(args)
        .envs(env)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "altdata {args:?} failed:\n{stderr}"
    );
    (stdout, stderr)
}

fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().trim().to_owned()
}

async fn status(gateway: &ServedGateway, key: &str) -> u16 {
    let authorization = format!("Bearer {key}");
    http(
        gateway.addr,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "GET",
        "/v1/categories",
        &[("Authorization", &authorization)],
    )
    .await
    .status
}

async fn refused_within_a_second(gateway: &ServedGateway, key: &str, what: &str) {
    wait_for(what, Duration::from_secs(1), || async {
        (status(gateway, key).await == 401).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_rotated_and_revoked_from_the_command_line() {
    // The gateway would trust a cached key for an hour: only the revocation message can make
    // it refuse one within a second.
    let app = spawn_gateway(&[("ALTDATA_API_KEY_CACHE_TTL", "1h")]).await;
    let gateway = app.serve(&[]).await;
    let env = &app.env;

    let args = [
        "keys",
        "create",
        "--role",
        "analyst",
        "--name",
        "cli test",
        "--expires-in",
        "30d",
    ];
    let (out, err) = altdata(env, &args);
    let key = last_line(&out);
    assert!(key.starts_with("adx_"), "{out}");
    assert!(err.contains("expires"), "{err}");
    assert_eq!(status(&gateway, &key).await, 200);

    let (list, _) = altdata(env, &["keys", "list"]);
    assert!(!list.contains(&key), "the list holds a secret:\n{list}");
    let line = list
        .lines()
        .find(|l| l.contains("cli test"))
        .unwrap_or_else(|| panic!("not listed:\n{list}"));
    assert!(
        line.contains(&key[..8]) && line.contains("active"),
        "{line}"
    );

    // Rotate by prefix: the old key is refused by the running gateway, the new one works.
    let (out, _) = altdata(env, &["keys", "rotate", &key[..8]]);
    let rotated = last_line(&out);
    assert!(rotated.starts_with("adx_") && rotated != key, "{out}");
    refused_within_a_second(&gateway, &key, "the rotated key to be refused").await;
    assert_eq!(status(&gateway, &rotated).await, 200);

    // Revoke by id.
    let id: i64 = scalar(
        &app.db().await,
        "SELECT id FROM api_keys WHERE name = 'cli test' AND revoked_at IS NULL",
    )
    .await;
    let (_, err) = altdata(env, &["keys", "revoke", &id.to_string()]);
    assert!(err.contains("within a second"), "{err}");
    refused_within_a_second(&gateway, &rotated, "the revoked key to be refused").await;

    let (list, _) = altdata(env, &["keys", "list"]);
    println!("{list}");
    let revoked = list
        .lines()
        .filter(|l| l.contains("cli test") && l.contains("revoked"))
        .count();
    assert_eq!(revoked, 2, "{list}");
    for secret in [&key, &rotated, &app.admin_key, &app.analyst_key] {
        assert!(!list.contains(secret.as_str()), "a secret is listed");
    }
    let audited: i64 = scalar(
        &app.db().await,
        "SELECT count(*) FROM api_key_audit WHERE actor LIKE 'cli%'",
    )
    .await;
    assert_eq!(audited, 3, "create, rotate and revoke are audited");
}
