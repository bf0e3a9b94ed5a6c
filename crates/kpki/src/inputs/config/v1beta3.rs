//! The fields of `kubeadm.k8s.io/v1beta3` InitConfiguration and ClusterConfiguration.
//!
//! Transcribed from kubeadm's `cmd/kubeadm/app/apis/kubeadm/v1beta3/types.go` (JSON tags), for
//! the objects kpki walks. v1beta3 has no `encryptionAlgorithm`, no validity periods, no `proxy`,
//! no `extraEnvs`; its `extraArgs` are maps. Readable by kubeadm 1.22 to 1.35 (removed in 1.36).

use super::Shape::{Any, ArgsMap, Map};
use super::{f, Field};

const EXTRA: &[Field] = &[f("extraArgs", ArgsMap), f("extraVolumes", Any)];

const API_SERVER: &[Field] = &[
    f("extraArgs", ArgsMap),
    f("extraVolumes", Any),
    f("certSANs", Any),
    f("timeoutForControlPlane", Any),
];

const IMAGE_META: &[Field] = &[f("imageRepository", Any), f("imageTag", Any)];

const LOCAL_ETCD: &[Field] = &[
    f("imageRepository", Any),
    f("imageTag", Any),
    f("dataDir", Any),
    f("extraArgs", ArgsMap),
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

/// `ClusterConfiguration` (v1beta3).
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
    f("dns", Map(IMAGE_META)),
    f("certificatesDir", Any),
    f("imageRepository", Any),
    f("featureGates", Any),
    f("clusterName", Any),
];

const NODE_REGISTRATION: &[Field] = &[
    f("name", Any),
    f("criSocket", Any),
    f("taints", Any),
    f("kubeletExtraArgs", ArgsMap),
    f("ignorePreflightErrors", Any),
    f("imagePullPolicy", Any),
];

const API_ENDPOINT: &[Field] = &[f("advertiseAddress", Any), f("bindPort", Any)];

/// `InitConfiguration` (v1beta3).
pub const INIT: &[Field] = &[
    f("apiVersion", Any),
    f("kind", Any),
    f("bootstrapTokens", Any),
    f("nodeRegistration", Map(NODE_REGISTRATION)),
    f("localAPIEndpoint", Map(API_ENDPOINT)),
    f("certificateKey", Any),
    f("skipPhases", Any),
    f("patches", Any),
];
