//! `parc facts --format glpi` on a real lab (needs root and openssh-server):
//! one GLPI native inventory per host, valid against the schema GLPI checks
//! inventories with (tests/fixtures/glpi, from glpi-project).

mod common;

use common::TestLab;

#[test]
fn facts_of_three_hosts_are_three_valid_glpi_inventories() {
    common::require_root_and_sshd();
    let lab = TestLab::start(3);
    let out_dir = tempfile::tempdir().unwrap();
    let gather = || {
        let out = lab
            .parc()
            .args(["facts", "all", "--format", "glpi", "-o"])
            .arg(out_dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
    };
    gather();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/glpi/inventory.schema.json")).unwrap();
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let mut ids = Vec::new();
    for host in &lab.lab.hosts {
        let path = out_dir.path().join(format!("{}.json", host.name));
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        assert_eq!(doc["itemtype"], "Computer");
        assert!(
            doc["content"]["operatingsystem"]["kernel_version"]
                .as_str()
                .is_some()
        );
        ids.push(doc["deviceid"].as_str().unwrap().to_string());
    }
    assert_eq!(
        std::fs::read_dir(out_dir.path()).unwrap().count(),
        3,
        "one file per host"
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one device id per machine");

    // Gathered again: the same ids.
    gather();
    for host in &lab.lab.hosts {
        let doc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out_dir.path().join(format!("{}.json", host.name))).unwrap(),
        )
        .unwrap();
        assert!(ids.contains(&doc["deviceid"].as_str().unwrap().to_string()));
    }
}
