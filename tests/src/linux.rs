//! Reading the Linux target's and its stub's consoles
//! ([`crate::steps::with_linux_target`]): what the guest says ran, and
//! what the stub's audit records say.

/// The guest's own word for who ran a program: `linux-target: NAME pid P`.
pub fn guest_pid(guest: &str, name: &str) -> Option<u64> {
    let prefix = format!("linux-target: {name} pid ");
    guest
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}

/// LSTAR as the guest read it before and after the write (hex digits).
pub fn lstar_before_after(guest: &str) -> Option<(String, String)> {
    let before = guest
        .lines()
        .find_map(|l| l.strip_prefix("linux-target: up after "))?
        .split("lstar ")
        .nth(1)?
        .trim()
        .to_string();
    let after = guest
        .lines()
        .find_map(|l| l.strip_prefix("linux-target: lstar after the write "))?
        .trim()
        .to_string();
    Some((before, after))
}

/// The stub's audit records (one JSON object per line).
pub fn records(stub: &str) -> Vec<&str> {
    stub.lines()
        .filter(|l| l.starts_with("{\"vcpu\":"))
        .collect()
}

/// The `(pid, comm)` a record names, if it names a task.
pub fn process_of(rec: &str) -> Option<(u64, String)> {
    let at = rec.find("\"pid\":")? + 6;
    let pid = rec[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let at = rec.find("\"comm\":\"")? + 8;
    let comm = rec[at..].split('"').next()?.to_string();
    Some((pid, comm))
}

/// The record of the denied bogus LSTAR write.
pub fn denial(stub: &str) -> Option<&str> {
    let bad = format!(
        "\"new\":\"{:#x}\"",
        testbed::kernels::LINUX_TARGET_BAD_LSTAR
    );
    records(stub)
        .into_iter()
        .find(|r| r.contains(&bad) && r.contains("\"action\":\"deny\""))
}

/// The record of `cpuid-probe`'s CPUID.
pub fn probe(stub: &str) -> Option<&str> {
    let leaf = format!(
        "\"leaf\":\"{:#x}\"",
        testbed::kernels::LINUX_TARGET_PROBE_LEAF
    );
    records(stub).into_iter().find(|r| r.contains(&leaf))
}

/// The hex bytes a record's `peek` read, if it read any.
pub fn peek_bytes(rec: &str) -> Option<&str> {
    let at = rec.find("\"peek\":{")?;
    let rest = &rec[at..];
    let b = rest.find("\"bytes\":\"")? + 9;
    rest[b..].split('"').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_yield_their_task() {
        let r = "{\"vcpu\":0,\"event\":\"mov_to_msr\",\"new\":\"0xffffffffdead0000\",\"action\":\"deny\",\
                 \"process\":{\"pid\":95,\"tgid\":95,\"comm\":\"dd\"},\"seq\":712}";
        assert_eq!(process_of(r), Some((95, "dd".into())));
        assert_eq!(denial(r), Some(r));
        assert_eq!(
            process_of("{\"vcpu\":0,\"process\":{\"error\":\"x\"}}"),
            None
        );
        let g = "linux-target: up after 1.2s; lstar ffffffff81c00080\nlinux-target: dd pid 93\n\
                 linux-target: lstar after the write ffffffff81c00080\n";
        assert_eq!(guest_pid(g, "dd"), Some(93));
        assert_eq!(
            lstar_before_after(g),
            Some(("ffffffff81c00080".into(), "ffffffff81c00080".into()))
        );
    }
}
