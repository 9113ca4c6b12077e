//! Path parameters with their documented shape: the OpenAPI document says which
//! names are well formed, so a client knows in advance what is a 400.

use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::{Array, ArrayBuilder, Object, ObjectBuilder, Required, Type};

use crate::service::logs::{
    DEFAULT_FACETS, FacetsQuery, FieldMatches, MAX_FACET_FIELDS, MAX_FIELD_MATCHES, MAX_TEXT,
    MAX_UNITS, MAX_UNITS_LEN, UnitsParam,
};
use crate::systemd::UnitAction;
use crate::systemd::journal::FIELD_NAME_PATTERN;
use crate::systemd::names::{MAX_UNIT_NAME_LEN, unit_name_pattern};
use crate::unitfile::{unit_file_name_pattern, validate::MAX_NAME_LEN};

/// `{name}` of the unit routes.
#[derive(Deserialize)]
pub struct UnitPath {
    pub name: String,
}

/// `{name}/{action}` of a unit action.
#[derive(Deserialize)]
pub struct UnitActionPath {
    pub name: String,
    pub action: String,
}

/// `{name}` of the unit-file routes.
#[derive(Deserialize)]
pub struct UnitFilePath {
    pub name: String,
}

// By hand: the derive drops the description and `required` of a field whose schema
// comes from a function.
impl IntoParams for UnitPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![unit_name()]
    }
}

impl IntoParams for UnitActionPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let actions = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(UnitAction::ALL.map(UnitAction::as_str)));
        vec![
            unit_name(),
            path_param("action", "What to do; another action is a 404.", actions),
        ]
    }
}

impl IntoParams for UnitFilePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(unit_file_name_pattern()))
            .max_length(Some(MAX_NAME_LEN + ".service".len()))
            .examples(["shop-api"]);
        vec![path_param(
            "name",
            "The base name (`shop-api`) or a file name (`shop-api.service`, `nightly.timer`); \
             anything else is a 400.",
            schema,
        )]
    }
}

fn unit_name() -> Parameter {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(unit_name_pattern()))
        .max_length(Some(MAX_UNIT_NAME_LEN))
        .examples(["shop-api.service"]);
    path_param(
        "name",
        "A full unit name, e.g. `dbus.service` or `getty@tty1.service`; anything else is a 400.",
        schema,
    )
}

// By hand for the same reason. A comma-separated list is an array parameter of
// style `form` without `explode` (`units=a.service,b.service`).
impl IntoParams for UnitsParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(unit_name_pattern()))
            .max_length(Some(MAX_UNIT_NAME_LEN));
        let list = ArrayBuilder::new()
            .items(name)
            .min_items(Some(1))
            .max_items(Some(MAX_UNITS));
        vec![query_list(
            "units",
            format!(
                "1 to {MAX_UNITS} full unit names, comma-separated (at most {MAX_UNITS_LEN} \
                 characters): their entries merged in time order (journalctl's `--unit`: \
                 also systemd's messages about them). Without it: the whole journal."
            ),
            list,
            false,
        )]
    }
}

/// `match` and `exclude`: repeated parameters (`match=A=x&match=B=y`), arrays of style
/// `form` with `explode`.
impl IntoParams for FieldMatches {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let item = || {
            let value = format!("^{FIELD_NAME_PATTERN}=[^\\u0000]{{0,{MAX_TEXT}}}$");
            ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(value)),
                )
                .max_items(Some(MAX_FIELD_MATCHES))
        };
        vec![
            query_list(
                "match",
                "`FIELD=VALUE`, repeatable: only entries with that value (journalctl's \
                 matches: values of one field are ORed, different fields ANDed, and all of \
                 them ANDed with the other filters)."
                    .to_string(),
                item(),
                true,
            ),
            query_list(
                "exclude",
                "`FIELD=VALUE`, repeatable: entries with any of these values are left out."
                    .to_string(),
                item(),
                true,
            ),
        ]
    }
}

impl IntoParams for FacetsQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let field = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^{FIELD_NAME_PATTERN}$")));
        let list = ArrayBuilder::new()
            .items(field)
            .min_items(Some(1))
            .max_items(Some(MAX_FACET_FIELDS));
        vec![query_list(
            "fields",
            format!(
                "Journal field names to count values of, comma-separated (default {}).",
                DEFAULT_FACETS.join(",")
            ),
            list,
            false,
        )]
    }
}

/// An optional query parameter holding a list: comma-separated (`explode` false) or
/// repeated (`explode` true).
fn query_list(name: &str, description: String, list: ArrayBuilder, explode: bool) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .style(Some(ParameterStyle::Form))
        .explode(Some(explode))
        .description(Some(description))
        .schema(Some(Array::from(list)))
        .build()
}

fn path_param(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(Object::from(schema)))
        .build()
}
