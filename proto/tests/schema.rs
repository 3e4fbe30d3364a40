//! Schema rules checked on the compiled descriptor set (what reflection serves).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost::Message;
use prost_types::FileDescriptorSet;

fn descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(custody_proto::FILE_DESCRIPTOR_SET).unwrap()
}

#[test]
fn signer_v1_has_its_three_services() {
    let set = descriptors();
    let mut services: Vec<String> = set
        .file
        .iter()
        .filter(|f| f.package() == "custody.signer.v1")
        .flat_map(|f| f.service.iter().map(|s| s.name().to_owned()))
        .collect();
    services.sort();
    assert_eq!(services, ["SignerClient", "SignerControl", "SignerPeer"]);
}

#[test]
fn coordinator_v1_serves_the_public_api() {
    let set = descriptors();
    let file = set
        .file
        .iter()
        .find(|f| f.package() == "custody.coordinator.v1")
        .unwrap();
    assert_eq!(file.service.len(), 1);
    let service = &file.service[0];
    assert_eq!(service.name(), "Coordinator");
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    assert_eq!(
        methods,
        [
            "SubmitTransaction",
            "GetAccount",
            "GetDepositAddresses",
            "GetLockIn",
            "GetLockOut",
            "GetBlock",
            "GetTransactionProof",
            "GetOrderProof",
            "GetStatus",
            "GetBlame",
            "StreamEvents",
        ]
    );
    let stream = service
        .method
        .iter()
        .find(|m| m.name() == "StreamEvents")
        .unwrap();
    assert!(stream.server_streaming() && !stream.client_streaming());
    // The chain records these lock-out stages and no others (signing and broadcast are
    // engine steps, not chain state).
    let stages: Vec<&str> = file
        .enum_type
        .iter()
        .find(|e| e.name() == "LockOutStage")
        .unwrap()
        .value
        .iter()
        .map(|v| v.name())
        .collect();
    assert_eq!(
        stages,
        [
            "LOCK_OUT_STAGE_UNSPECIFIED",
            "LOCK_OUT_STAGE_LOCKED",
            "LOCK_OUT_STAGE_ORDER_COMMITTED",
            "LOCK_OUT_STAGE_BURNED",
            "LOCK_OUT_STAGE_REFUNDED",
            "LOCK_OUT_STAGE_CANCELLING",
            "LOCK_OUT_STAGE_CANCELLED",
        ]
    );
}

#[test]
fn every_enum_starts_with_unspecified_zero() {
    let set = descriptors();
    let mut seen = 0;
    for file in &set.file {
        let nested = file.message_type.iter().flat_map(|m| m.enum_type.iter());
        for e in file.enum_type.iter().chain(nested) {
            let first = &e.value[0];
            assert_eq!(first.number(), 0, "{}", e.name());
            assert!(
                first.name().ends_with("_UNSPECIFIED"),
                "{}: {}",
                e.name(),
                first.name()
            );
            seen += 1;
        }
    }
    assert!(seen >= 2);
}

#[test]
fn every_package_is_versioned() {
    for file in descriptors().file {
        let package = file.package();
        let version = package.rsplit('.').next().unwrap();
        assert!(
            package.starts_with("custody.")
                && version.starts_with('v')
                && version[1..].chars().all(|c| c.is_ascii_digit()),
            "{package} is not custody.<area>.v<N>"
        );
    }
}
