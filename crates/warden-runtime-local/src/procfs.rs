//! Process identity from `/proc`.
//!
//! A pid alone does not name a process for long: once it exits the kernel
//! may hand the same number to an unrelated process. Pairing the pid with
//! the process start time (field 22 of `/proc/<pid>/stat`, in clock ticks
//! since boot) names exactly one process for the life of the machine, which
//! is what re-adoption after a control-plane restart needs before it dares
//! to signal anything.

use std::io;
use std::path::Path;

/// A pid together with the start time that makes it unambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessIdentity {
    pub pid: i32,
    pub start_time: u64,
}

/// What `/proc` says about a recorded process right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The same process (same pid and start time) exists and has not exited.
    Alive,
    /// Exited, a zombie, or the pid now belongs to another process.
    Gone,
}

impl ProcessIdentity {
    /// Reads the identity of a process that exists now.
    pub fn of(pid: i32) -> io::Result<Self> {
        let stat = read_stat(pid)?;
        let parsed = parse_stat(&stat).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unreadable /proc/{pid}/stat"),
            )
        })?;
        Ok(ProcessIdentity {
            pid,
            start_time: parsed.start_time,
        })
    }

    /// The runtime's job reference: `pid:<pid>:<starttime>`.
    pub fn job_ref(&self) -> String {
        format!("pid:{}:{}", self.pid, self.start_time)
    }

    /// Parses what [`ProcessIdentity::job_ref`] produced.
    pub fn from_job_ref(job_ref: &str) -> Option<Self> {
        let mut parts = job_ref.split(':');
        let (Some("pid"), Some(pid), Some(start), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let pid: i32 = pid.parse().ok()?;
        let start_time: u64 = start.parse().ok()?;
        (pid > 1).then_some(ProcessIdentity { pid, start_time })
    }

    pub fn liveness(&self) -> Liveness {
        if self.pid <= 1 {
            return Liveness::Gone;
        }
        match read_stat(self.pid).ok().as_deref().and_then(parse_stat) {
            Some(stat) if stat.start_time == self.start_time && !stat.is_dead() => Liveness::Alive,
            _ => Liveness::Gone,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub state: char,
    pub process_group: i32,
    pub start_time: u64,
}

impl Stat {
    /// Zombies (`Z`) and dead tasks (`X`) have exited; they only wait to be
    /// reaped.
    fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

fn read_stat(pid: i32) -> io::Result<String> {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may itself contain spaces and parentheses, so fields are counted from
/// the last `)`.
pub(crate) fn parse_stat(stat: &str) -> Option<Stat> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    // Fields from 3 (state) onwards.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let process_group = fields.get(5 - 3)?.parse().ok()?;
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    Some(Stat {
        state,
        process_group,
        start_time,
    })
}

/// Live (non-zombie) processes whose process group is `group`.
pub(crate) fn members_of_group(group: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            read_stat(*pid)
                .ok()
                .as_deref()
                .and_then(parse_stat)
                .is_some_and(|s| s.process_group == group && !s.is_dead())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (sh (evil) x) S 1 4242 4242 0 -1 4194560 118 0 0 0 0 0 0 0 20 0 1 0 987654 2523136 230 18446744073709551615 1 1 0 0 0 0 0 0 65538 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = parse_stat(STAT).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.process_group, 4242);
        assert_eq!(stat.start_time, 987_654);
    }

    #[test]
    fn truncated_stat_is_rejected() {
        assert_eq!(parse_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn job_refs_round_trip_and_reject_nonsense() {
        let id = ProcessIdentity {
            pid: 4242,
            start_time: 987_654,
        };
        assert_eq!(id.job_ref(), "pid:4242:987654");
        assert_eq!(ProcessIdentity::from_job_ref(&id.job_ref()), Some(id));
        for bad in [
            "pid:1:5",
            "pid:0:5",
            "pid:-3:5",
            "pid:12",
            "pid:12:5:6",
            "job:12:5",
            "",
        ] {
            assert_eq!(ProcessIdentity::from_job_ref(bad), None, "{bad}");
        }
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let me = ProcessIdentity::of(pid).unwrap();
        assert_eq!(me.liveness(), Liveness::Alive);
        let impostor = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me
        };
        assert_eq!(impostor.liveness(), Liveness::Gone);
    }
}
