//! The workspace's dependency direction (DESIGN.md, "Workspace"), checked over `cargo metadata`:
//! proto and core depend on no workspace crate; keys, formats and store only on core; the client
//! side (client, cli) never reaches key backends or storage.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn workspace_graph() -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut graph = BTreeMap::new();
    for p in &packages {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        // Every kind of dependency counts: normal, dev and build.
        let deps = p["dependencies"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .filter(|d| members.contains(d))
            .collect();
        graph.insert(name, deps);
    }
    Ok(graph)
}

fn closure(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![start.to_owned()];
    while let Some(n) = stack.pop() {
        for d in graph.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn dependency_direction_holds() -> anyhow::Result<()> {
    let graph = workspace_graph()?;
    let allowed: &[(&str, &[&str])] = &[
        ("signet-proto", &[]),
        ("signet-core", &[]),
        ("signet-keys", &["signet-core"]),
        ("signet-formats", &["signet-core"]),
        ("signet-store", &["signet-core"]),
        ("signet-client", &["signet-proto"]),
        (
            "signet-cli",
            &[
                "signet-client",
                "signet-proto",
                "signet-formats",
                "signet-core",
            ],
        ),
        (
            "signet-server",
            &[
                "signet-core",
                "signet-keys",
                "signet-formats",
                "signet-store",
                "signet-proto",
            ],
        ),
        ("signet-e2e", &[]),
    ];
    for (name, ok) in allowed {
        let deps = graph
            .get(*name)
            .ok_or_else(|| anyhow::anyhow!("workspace has no crate `{name}`"))?;
        let extra: Vec<_> = deps.iter().filter(|d| !ok.contains(&d.as_str())).collect();
        anyhow::ensure!(extra.is_empty(), "`{name}` must not depend on {extra:?}");
    }
    anyhow::ensure!(
        graph.len() == allowed.len(),
        "a crate was added without a rule here: {:?}",
        graph.keys().collect::<Vec<_>>()
    );
    for client_side in ["signet-client", "signet-cli"] {
        let reach = closure(&graph, client_side);
        for forbidden in ["signet-keys", "signet-store", "signet-server"] {
            anyhow::ensure!(
                !reach.contains(forbidden),
                "`{client_side}` reaches `{forbidden}`"
            );
        }
    }
    Ok(())
}
