//! Ansible's host ranges in inventory host names: `ws-[001:050]`, `lab-[a:f]`,
//! `node[0:20:5]` (a step); several ranges in one name multiply out.

/// More hosts than this from one name is a typo, not a fleet.
const MAX_HOSTS: usize = 65_536;

/// A host entry as Ansible reads one: `name[:port]` (or `[ipv6]:port`),
/// where the name may hold ranges. The names it stands for, and the port.
pub fn host_pattern(entry: &str) -> Result<(Vec<String>, Option<u16>), String> {
    let (name, port) = crate::numbers::host_port(entry);
    Ok((expand(name)?, port))
}

/// The host names `name` stands for: itself when it has no `[`.
pub fn expand(name: &str) -> Result<Vec<String>, String> {
    let names = expand_all(name)?;
    if names.len() > MAX_HOSTS {
        return Err(format!(
            "host range `{name}` stands for {} hosts, more than the {MAX_HOSTS} parc accepts from one name",
            names.len()
        ));
    }
    Ok(names)
}

fn expand_all(name: &str) -> Result<Vec<String>, String> {
    let Some(open) = name.find('[') else {
        return Ok(vec![name.to_string()]);
    };
    let close = name[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("host range `{name}`: `[` without its `]`"))?;
    let (head, range, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    let items = items(range).map_err(|why| format!("host range `{name}`: {why}"))?;
    let tails = expand_all(tail)?;
    if items.len().saturating_mul(tails.len()) > MAX_HOSTS {
        return Err(format!(
            "host range `{name}` stands for more than the {MAX_HOSTS} hosts parc accepts from one name"
        ));
    }
    Ok(items
        .iter()
        .flat_map(|item| tails.iter().map(move |t| format!("{head}{item}{t}")))
        .collect())
}

/// `BEGIN:END[:STEP]`, numbers (zero-padded when BEGIN is) or single letters.
fn items(range: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = range.split(':').collect();
    let (begin, end, step) = match parts[..] {
        [b, e] => (b, e, 1),
        [b, e, s] => match s.parse::<usize>() {
            Ok(s) if s > 0 => (b, e, s),
            _ => return Err(format!("the step `{s}` is not a positive number")),
        },
        _ => return Err("expected `[BEGIN:END]` or `[BEGIN:END:STEP]`".into()),
    };
    // As in Ansible, an empty beginning means 0.
    let begin = if begin.is_empty() { "0" } else { begin };
    if let (Ok(b), Ok(e)) = (begin.parse::<u64>(), end.parse::<u64>()) {
        let width = if begin.len() > 1 && begin.starts_with('0') {
            if begin.len() != end.len() {
                return Err(format!(
                    "`{begin}` and `{end}` must have the same number of digits when zero-padded"
                ));
            }
            begin.len()
        } else {
            0
        };
        if b > e {
            return Err(format!("`{begin}` comes after `{end}`"));
        }
        if (e - b) as usize / step >= MAX_HOSTS {
            return Err(format!("more than {MAX_HOSTS} hosts"));
        }
        return Ok((b..=e)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect());
    }
    let letter = |s: &str| {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
            _ => None,
        }
    };
    match (letter(begin), letter(end)) {
        (Some(b), Some(e)) if b <= e => Ok((b..=e).step_by(step).map(String::from).collect()),
        (Some(_), Some(_)) => Err(format!("`{begin}` comes after `{end}`")),
        _ => Err(format!(
            "`{begin}:{end}` is neither two numbers nor two single letters"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_as_in_ansible() {
        assert_eq!(expand("ws-001").unwrap(), ["ws-001"]);
        assert_eq!(expand("ws-[01:03]").unwrap(), ["ws-01", "ws-02", "ws-03"]);
        assert_eq!(expand("n[8:10]").unwrap(), ["n8", "n9", "n10"]);
        assert_eq!(
            expand("n[:4:2].lan").unwrap(),
            ["n0.lan", "n2.lan", "n4.lan"]
        );
        assert_eq!(expand("lab-[a:c]").unwrap(), ["lab-a", "lab-b", "lab-c"]);
        assert_eq!(
            expand("r[1:2]-[a:b]").unwrap(),
            ["r1-a", "r1-b", "r2-a", "r2-b"]
        );
    }

    #[test]
    fn ports_written_with_the_host() {
        let p = |e: &str| host_pattern(e).unwrap();
        assert_eq!(p("db1:2200"), (vec!["db1".into()], Some(2200)));
        assert_eq!(p("n[1:2]:22"), (vec!["n1".into(), "n2".into()], Some(22)));
        assert_eq!(p("n[1:2]"), (vec!["n1".into(), "n2".into()], None));
        assert_eq!(p("[fe80::1]:22"), (vec!["fe80::1".into()], Some(22)));
        assert_eq!(p("fe80::1"), (vec!["fe80::1".into()], None));
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        let e = |n: &str| expand(n).unwrap_err();
        assert!(
            e("ws-[01:3]").contains("same number of digits"),
            "{}",
            e("ws-[01:3]")
        );
        assert!(e("ws-[5:1]").contains("`5` comes after `1`"));
        assert!(e("ws-[1:5").contains("without its `]`"));
        assert!(e("ws-[1:5:0]").contains("step `0`"));
        assert!(e("ws-[a:5]").contains("neither two numbers"));
        assert!(e("ws-[1]").contains("expected `[BEGIN:END]`"));
        assert!(e("ws-[0:999999]").contains("more than 65536"));
        assert!(e("a[0:999]b[0:999]").contains("more than the 65536"));
    }
}
