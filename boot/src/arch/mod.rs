//! Hardware side of the runtime (only built for `target_os = "none"`).

pub mod x86_64;
