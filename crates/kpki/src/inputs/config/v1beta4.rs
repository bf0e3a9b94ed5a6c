//! The fields of `kubeadm.k8s.io/v1beta4` InitConfiguration and ClusterConfiguration.
//!
//! Transcribed from kubeadm's `cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go` (JSON tags) and
//! its package documentation (the list of changes since v1beta3): `encryptionAlgorithm`,
//! `certificateValidityPeriod`, `caCertificateValidityPeriod`, `proxy`, `dns.disabled`,
//! `extraEnvs`, `dryRun`, `timeouts`, `nodeRegistration.imagePullSerial`; `extraArgs` and
//! `kubeletExtraArgs` are lists of `{name, value}`; `apiServer.timeoutForControlPlane` moved to
//! `InitConfiguration.timeouts`. Readable by kubeadm 1.31 and newer.

use super::yaml::Obj;
use super::Shape::{Any, ArgsList, Map};
use super::{f, Field, KubeadmConfig};

const EXTRA: &[Field] = &[
    f("extraArgs", ArgsList),
    f("extraVolumes", Any),
    f("extraEnvs", Any),
];

const API_SERVER: &[Field] = &[
    f("extraArgs", ArgsList),
    f("extraVolumes", Any),
    f("extraEnvs", Any),
    f("certSANs", Any),
];

const DNS: &[Field] = &[
    f("imageRepository", Any),
    f("imageTag", Any),
    f("disabled", Any),
];

const PROXY: &[Field] = &[f("disabled", Any)];

const LOCAL_ETCD: &[Field] = &[
    f("imageRepository", Any),
    f("imageTag", Any),
    f("dataDir", Any),
    f("extraArgs", ArgsList),
    f("extraEnvs", Any),
    f("serverCertSANs", Any),
    f("peerCertSANs", Any),
];

const EXTERNAL_ETCD: &[Field] = &[
    f("endpoints", Any),
    f("caFile", Any),
    f("certFile", Any),
    f("keyFile", Any),
];

const ETCD: &[Field] = &[
    f("local", Map(LOCAL_ETCD)),
    f("external", Map(EXTERNAL_ETCD)),
];

const NETWORKING: &[Field] = &[
    f("serviceSubnet", Any),
    f("podSubnet", Any),
    f("dnsDomain", Any),
];

/// `ClusterConfiguration` (v1beta4).
pub const CLUSTER: &[Field] = &[
    f("apiVersion", Any),
    f("kind", Any),
    f("etcd", Map(ETCD)),
    f("networking", Map(NETWORKING)),
    f("kubernetesVersion", Any),
    f("controlPlaneEndpoint", Any),
    f("apiServer", Map(API_SERVER)),
    f("controllerManager", Map(EXTRA)),
    f("scheduler", Map(EXTRA)),
    f("dns", Map(DNS)),
    f("proxy", Map(PROXY)),
    f("certificatesDir", Any),
    f("imageRepository", Any),
    f("featureGates", Any),
    f("clusterName", Any),
    f("encryptionAlgorithm", Any),
    f("certificateValidityPeriod", Any),
    f("caCertificateValidityPeriod", Any),
];

const NODE_REGISTRATION: &[Field] = &[
    f("name", Any),
    f("criSocket", Any),
    f("taints", Any),
    f("kubeletExtraArgs", ArgsList),
    f("ignorePreflightErrors", Any),
    f("imagePullPolicy", Any),
    f("imagePullSerial", Any),
];

const API_ENDPOINT: &[Field] = &[f("advertiseAddress", Any), f("bindPort", Any)];

/// `InitConfiguration` (v1beta4).
pub const INIT: &[Field] = &[
    f("apiVersion", Any),
    f("kind", Any),
    f("bootstrapTokens", Any),
    f("dryRun", Any),
    f("nodeRegistration", Map(NODE_REGISTRATION)),
    f("localAPIEndpoint", Map(API_ENDPOINT)),
    f("certificateKey", Any),
    f("skipPhases", Any),
    f("patches", Any),
    f("timeouts", Any),
];

/// Reads the ClusterConfiguration fields only v1beta4 has.
pub(super) fn read_cluster(obj: &Obj<'_>, cfg: &mut KubeadmConfig) -> Result<(), String> {
    cfg.encryption_algorithm = obj.string("encryptionAlgorithm")?;
    cfg.certificate_validity_period = obj.duration("certificateValidityPeriod")?;
    cfg.ca_certificate_validity_period = obj.duration("caCertificateValidityPeriod")?;
    for k in [
        "encryptionAlgorithm",
        "certificateValidityPeriod",
        "caCertificateValidityPeriod",
    ] {
        super::note(cfg, obj, k);
    }
    Ok(())
}
