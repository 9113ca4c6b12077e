//! The names of unit files in routes: `{name}` is the base name (`shop-api`) or a file
//! name (`shop-api.service`, `nightly.timer`); responses always name the service file
//! (`shop-api.service`), which is also the key in the database.

use super::validate::MAX_NAME_LEN;
use crate::error::{AppError, AppResult};

/// What [`base_name`] accepts, as a regular expression for the OpenAPI document.
pub fn unit_file_name_pattern() -> String {
    format!(
        r"^[A-Za-z0-9:_][A-Za-z0-9:_.\-]{{0,{}}}(\.service|\.timer)?$",
        MAX_NAME_LEN - 1
    )
}

/// The base name from a route parameter: `shop-api`, `shop-api.service` or
/// `shop-api.timer` all name the unit file `shop-api`. 400 for anything that cannot be one.
pub fn base_name(raw: &str) -> AppResult<String> {
    let base = raw
        .strip_suffix(".service")
        .or_else(|| raw.strip_suffix(".timer"))
        .unwrap_or(raw);
    let ok = !base.is_empty()
        && base.len() <= MAX_NAME_LEN
        && !base.starts_with(['.', '-'])
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-'));
    if ok {
        Ok(base.to_string())
    } else {
        Err(AppError::BadRequest(format!(
            "{raw:?} is not a unit file name (expected e.g. shop-api or shop-api.service)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names no route accepts.
    const BAD_NAMES: [&str; 9] = [
        "",
        ".service",
        "../x",
        "a/b",
        "a b",
        ".hidden",
        "-x",
        "a@b.service",
        "a\nb",
    ];

    #[test]
    fn route_names_resolve_to_the_base_name() {
        assert_eq!(base_name("shop-api").unwrap(), "shop-api");
        assert_eq!(base_name("shop-api.service").unwrap(), "shop-api");
        assert_eq!(base_name("nightly.timer").unwrap(), "nightly");
        assert_eq!(base_name("my.app").unwrap(), "my.app");
        assert_eq!(base_name("dbus.socket").unwrap(), "dbus.socket");
        for bad in BAD_NAMES {
            assert!(
                matches!(base_name(bad), Err(AppError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_pattern_agrees_with_base_name() {
        let pattern = regex::Regex::new(&unit_file_name_pattern()).unwrap();
        let long = "x".repeat(MAX_NAME_LEN);
        for raw in [
            "shop-api",
            "shop-api.service",
            "nightly.timer",
            "my.app",
            "dbus.socket",
            "a.timer.service",
            "9",
            long.as_str(),
            &format!("{long}.service"),
            &format!("{long}x"),
            &format!("{long}x.timer"),
        ]
        .into_iter()
        .chain(BAD_NAMES)
        {
            assert_eq!(pattern.is_match(raw), base_name(raw).is_ok(), "{raw:?}");
        }
    }
}
