//! Unit names: validated before they reach D-Bus, a shell or a file path.

/// Unit types systemd knows, as name suffixes.
pub const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// Unit types that have templates and instances (systemd's `unit_type_may_template`).
pub const TEMPLATE_TYPES: &[&str] = &["service", "socket", "target", "timer", "path"];

/// The longest unit name systemd accepts (UNIT_NAME_MAX - 1).
pub const MAX_UNIT_NAME_LEN: usize = 255;

/// True for a full unit name such as `dbus.service`, `getty@tty1.service` or
/// `sys-kernel-debug.mount`: systemd's character set (`[A-Za-z0-9:_.\-@\\]`),
/// one known type suffix, at most 255 bytes, and at most one `@`, followed by an
/// instance, in a type that has templates. A template (`getty@.service`) or an
/// instance of a type without them (`a@b.mount`) names no unit: systemd's LoadUnit
/// refuses them.
pub fn is_valid_unit_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_UNIT_NAME_LEN {
        return false;
    }
    let Some((prefix, suffix)) = name.rsplit_once('.') else {
        return false;
    };
    if prefix.is_empty() || !UNIT_TYPES.contains(&suffix) {
        return false;
    }
    let valid_chars = prefix.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-' | b'\\' | b'@')
    });
    if !valid_chars || prefix.starts_with(['.', '@']) || prefix.matches('@').count() > 1 {
        return false;
    }
    match prefix.split_once('@') {
        None => true,
        Some((_, instance)) => !instance.is_empty() && TEMPLATE_TYPES.contains(&suffix),
    }
}

/// [`is_valid_unit_name`] as a regular expression, for the OpenAPI document (the length
/// limit is its `maxLength`, [`MAX_UNIT_NAME_LEN`]).
pub fn unit_name_pattern() -> String {
    const CHARS: &str = r"A-Za-z0-9:_\-\\";
    format!(
        r"^[{CHARS}][{CHARS}.]*(\.({})|@[{CHARS}.]+\.({}))$",
        UNIT_TYPES.join("|"),
        TEMPLATE_TYPES.join("|")
    )
}

/// The type of a unit (`service` for `dbus.service`).
pub fn unit_type(name: &str) -> &str {
    name.rsplit_once('.').map(|(_, t)| t).unwrap_or("")
}

/// True for a template name such as `getty@.service`.
/// Units whose start powers the container off, reboots it or takes it out of service
/// (rescue, emergency, sleep). unitdeck never starts them: one stray tap on a phone must
/// not take down the machine a whole team works in.
pub const SYSTEM_DOWN_UNITS: &[&str] = &[
    "ctrl-alt-del.target",
    "emergency.service",
    "emergency.target",
    "exit.target",
    "final.target",
    "halt.target",
    "hibernate.target",
    "hybrid-sleep.target",
    "kexec.target",
    "poweroff.target",
    "reboot.target",
    "rescue.service",
    "rescue.target",
    "shutdown.target",
    "sleep.target",
    "soft-reboot.target",
    "suspend-then-hibernate.target",
    "suspend.target",
    "systemd-exit.service",
    "systemd-halt.service",
    "systemd-hibernate.service",
    "systemd-hybrid-sleep.service",
    "systemd-kexec.service",
    "systemd-poweroff.service",
    "systemd-reboot.service",
    "systemd-soft-reboot.service",
    "systemd-suspend-then-hibernate.service",
    "systemd-suspend.service",
    "umount.target",
];

/// Starting this unit would shut the container down or take it out of service.
pub fn takes_the_system_down(name: &str) -> bool {
    SYSTEM_DOWN_UNITS.contains(&name)
}

pub fn is_template(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(prefix, _)| prefix.ends_with('@'))
}

/// Decodes the last element of a unit object path (`dbus_2eservice`) to its name.
/// systemd escapes every byte outside `[A-Za-z0-9]` as `_xx` (lower-case hex).
pub fn unit_name_from_object_path(path: &str) -> Option<String> {
    let label = path.strip_prefix("/org/freedesktop/systemd1/unit/")?;
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The object path systemd gives a unit (`dbus.service` → `.../unit/dbus_2eservice`).
pub fn unit_object_path(name: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            path.push(b as char);
        } else {
            path.push_str(&format!("_{b:02x}"));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_unit_names() {
        for name in [
            "dbus.service",
            "getty@tty1.service",
            "sys-kernel-debug.mount",
            "systemd-fsck@dev-disk-by\\x2duuid-1234.service",
            "-.slice",
            "init.scope",
            "a:b_c.d-e.timer",
        ] {
            assert!(is_valid_unit_name(name), "{name}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for name in [
            "",
            "dbus",
            ".service",
            "foo.exe",
            "../etc/passwd.service",
            "a/b.service",
            "a b.service",
            "a\nb.service",
            "a@b@c.service",
            "@x.service",
            ".hidden.service",
            "foo.service\0",
            "getty@.service",
            "a@b.automount",
            "a@b.mount",
            &format!("{}.service", "a".repeat(250)),
        ] {
            assert!(!is_valid_unit_name(name), "{name:?}");
        }
    }

    #[test]
    fn the_pattern_agrees_with_the_check() {
        let pattern = regex::Regex::new(&unit_name_pattern()).unwrap();
        for name in [
            "dbus.service",
            "getty@tty1.service",
            "getty@.service",
            "a@b.mount",
            "a@b.c.timer",
            "systemd-fsck@dev-disk-by\\x2duuid-1234.service",
            "-.slice",
            "a.b.c.mount",
            "a:b_c.d-e.timer",
            "x.service.service",
            "",
            "dbus",
            ".service",
            "foo.exe",
            "a/b.service",
            "a b.service",
            "a@b@c.service",
            "@x.service",
            ".hidden.service",
            "é.service",
            "a.service\n",
        ] {
            assert_eq!(
                pattern.is_match(name) && name.len() <= MAX_UNIT_NAME_LEN,
                is_valid_unit_name(name),
                "{name:?}"
            );
        }
    }

    #[test]
    fn templates_are_recognised() {
        assert!(is_template("getty@.service"));
        assert!(!is_template("getty@tty1.service"));
    }

    #[test]
    fn object_paths_decode() {
        assert_eq!(
            unit_name_from_object_path("/org/freedesktop/systemd1/unit/dbus_2eservice").as_deref(),
            Some("dbus.service")
        );
        assert_eq!(
            unit_name_from_object_path("/org/freedesktop/systemd1/unit/_2d_2eslice").as_deref(),
            Some("-.slice")
        );
        assert_eq!(
            unit_name_from_object_path("/org/freedesktop/systemd1/unit/getty_40tty1_2eservice")
                .as_deref(),
            Some("getty@tty1.service")
        );
        assert_eq!(
            unit_name_from_object_path("/org/freedesktop/systemd1/job/5"),
            None
        );
        for name in ["dbus.service", "-.slice", "getty@tty1.service", "0x.timer"] {
            assert_eq!(
                unit_name_from_object_path(&unit_object_path(name)).as_deref(),
                Some(name)
            );
        }
        assert_eq!(
            unit_object_path("dbus.service"),
            "/org/freedesktop/systemd1/unit/dbus_2eservice"
        );
        assert_eq!(
            unit_name_from_object_path("/org/freedesktop/systemd1/unit/bad_zz"),
            None
        );
    }
}
