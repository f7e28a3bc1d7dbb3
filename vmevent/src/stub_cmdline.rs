//! The stub domain's command line (xl `extra=`): the keys it accepts. The
//! stub parses them (`stubdom/src/service/config.rs`) and `vmi-launch`
//! writes them; both take the list from here, and the launcher's tests check
//! it has an option for every key, so the two cannot drift apart.

/// `target=<domid>`: the domain to monitor (required).
pub const TARGET: &str = "target";
/// `policy=<rules>`: an inline policy (else the first PVH module).
pub const POLICY: &str = "policy";
/// `log=all|violations|none`: which audit records go to the console.
pub const LOG: &str = "log";
/// `mode=block|poll`: how a stub vCPU waits for its ports.
pub const MODE: &str = "mode";
/// `spin=<µs>`: in block mode, how long a stub vCPU keeps looking at its
/// slots after an answer before it blocks (0: it blocks at once).
pub const SPIN: &str = "spin";
/// `ring_frames=1..16`: the async ring's size in 4 KiB frames.
pub const RING_FRAMES: &str = "ring_frames";
/// `seconds=N`: detach after N seconds (0: never).
pub const SECONDS: &str = "seconds";

/// `test_release=MAJOR.MINOR`: for tests only, the Xen release the stub
/// believes it speaks (default: [`crate::abi::XEN_RELEASE`]), to show the
/// refusal a stub gives on a hypervisor it cannot speak to.
pub const TEST_RELEASE: &str = "test_release";

/// Every key, each accepted once.
pub const KEYS: &[&str] = &[
    TARGET,
    POLICY,
    LOG,
    MODE,
    SPIN,
    RING_FRAMES,
    SECONDS,
    TEST_RELEASE,
];

/// `log=` values.
pub const LOG_LEVELS: &[&str] = &["all", "violations", "none"];
/// `mode=` values.
pub const MODES: &[&str] = &["block", "poll"];
/// Largest `spin=` (10 ms: longer is `mode=poll`).
pub const MAX_SPIN_US: u64 = 10_000;
/// Largest `ring_frames=`.
pub const MAX_RING_FRAMES: u32 = 16;
/// Largest `seconds=` (a year).
pub const MAX_SECONDS: u64 = 86_400 * 365;
