//! The pipeline's stages (see the crate docs for the flow). Hidden from the API: only the
//! crate itself, its fuzz targets, benchmarks and tests name these paths.

#[path = "apply/mod.rs"]
pub mod apply;
#[path = "assess/mod.rs"]
pub mod assess;
#[path = "disk/mod.rs"]
pub mod disk;
#[path = "entropy.rs"]
pub mod entropy;
#[path = "kubeconfig.rs"]
pub mod kubeconfig;
#[path = "limits.rs"]
pub mod limits;
#[path = "memo.rs"]
pub(crate) mod memo;
#[path = "model/mod.rs"]
pub mod model;
#[path = "ops/mod.rs"]
pub mod ops;
#[path = "views/mod.rs"]
pub mod views;
#[path = "x509/mod.rs"]
pub mod x509;

pub use crate::inputs::config as kubeadm_config;
pub use crate::inputs::node as node_inputs;
