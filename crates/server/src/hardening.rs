//! Process hardening for a server that holds key material in memory: no core dumps, not
//! dumpable (no `ptrace` by same-user processes, no `/proc/<pid>/mem` reads), memory locked so
//! keys are never written to swap. Each step is best effort where the OS does not allow it, and
//! what was not achieved is reported in `/api/v1/status` and the log.

/// What [`apply`] achieved.
#[derive(Debug, Clone, Default)]
pub struct Hardening {
    pub core_dumps_disabled: bool,
    pub memory_locked: bool,
    pub warnings: Vec<String>,
}

/// Applies the hardening once per process (later calls return the first result).
pub fn apply() -> Hardening {
    static ONCE: std::sync::OnceLock<Hardening> = std::sync::OnceLock::new();
    ONCE.get_or_init(apply_now).clone()
}

#[cfg(target_os = "linux")]
fn apply_now() -> Hardening {
    use rustix::mm::{MlockAllFlags, mlockall};
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};

    let mut h = Hardening::default();
    // INVARIANT: key material must not reach a core dump.
    let no_core = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    let not_dumpable = set_dumpable_behavior(DumpableBehavior::NotDumpable);
    h.core_dumps_disabled = no_core.is_ok() && not_dumpable.is_ok();
    if !h.core_dumps_disabled {
        h.warnings
            .push("core dumps could not be disabled; key material could reach a core file".into());
    }
    // Locking everything is safe only when the limit allows it: with a small RLIMIT_MEMLOCK,
    // MCL_FUTURE would make later allocations fail. Root (CAP_IPC_LOCK) is not limited.
    let limit = rustix::process::getrlimit(Resource::Memlock).current;
    let may_lock = rustix::process::geteuid().is_root() || limit.is_none();
    if may_lock
        && mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT).is_ok()
    {
        h.memory_locked = true;
    } else {
        let limit = limit.map_or_else(|| "unlimited".to_owned(), |l| format!("{l} bytes"));
        h.warnings.push(format!(
            "memory is not locked (RLIMIT_MEMLOCK is {limit}); keys could be swapped out — raise the limit (systemd `LimitMEMLOCK=infinity`) or use encrypted swap"
        ));
    }
    for w in &h.warnings {
        tracing::warn!("{w}");
    }
    h
}

#[cfg(not(target_os = "linux"))]
fn apply_now() -> Hardening {
    Hardening {
        warnings: vec!["process hardening is implemented for Linux only".into()],
        ..Hardening::default()
    }
}

/// Whether classical cryptography runs in aws-lc's FIPS 140-3 validated module (a build with
/// `--features fips` whose power-on self tests passed).
pub fn fips_active() -> bool {
    cfg!(feature = "fips") && aws_lc_rs::try_fips_mode().is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hardening_reports_what_it_achieved() {
        let h = super::apply();
        // Disabling core dumps needs no privilege on Linux.
        #[cfg(target_os = "linux")]
        assert!(h.core_dumps_disabled, "{:?}", h.warnings);
        assert_eq!(
            h.memory_locked,
            h.warnings.iter().all(|w| !w.contains("not locked"))
        );
    }

    #[test]
    fn fips_is_reported_only_for_a_fips_build() {
        assert_eq!(super::fips_active(), cfg!(feature = "fips"));
    }
}
