//! A small checker of JSON values against Swagger 2.0 definitions excerpts (`tests/data/*.json`):
//! `$ref`, `allOf`, `type`, `properties`, `items`, `required`. Keys a value has that the schema
//! does not declare are collected (dotted paths, `[]` for array items) so tests can pin the
//! documented differences between the service and its spec.

#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub struct Check {
    defs: Value,
    /// Match property names ignoring case (WebHDFS casing vs the swagger's camelCase).
    case_insensitive: bool,
    pub unknown: BTreeSet<String>,
    pub errors: Vec<String>,
}

impl Check {
    pub fn new(spec: &Value, case_insensitive: bool) -> Self {
        Check {
            defs: spec["definitions"].clone(),
            case_insensitive,
            unknown: BTreeSet::new(),
            errors: Vec::new(),
        }
    }

    fn resolve(&self, s: &Value) -> Value {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or_default();
                let d = self.defs[name].clone();
                assert!(!d.is_null(), "definition {name} missing from the excerpt");
                self.resolve(&d)
            }
            None => s.clone(),
        }
    }

    /// Properties and required names of a schema, including its `allOf` parents.
    fn shape(&self, s: &Value) -> (Map<String, Value>, Vec<String>) {
        let s = self.resolve(s);
        let mut props = Map::new();
        let mut req = Vec::new();
        for parent in s
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (p, r) = self.shape(parent);
            props.extend(p);
            req.extend(r);
        }
        if let Some(p) = s.get("properties").and_then(Value::as_object) {
            props.extend(p.clone());
        }
        req.extend(
            s.get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        );
        (props, req)
    }

    /// Check `v` against the definition `name`.
    pub fn definition(&mut self, v: &Value, name: &str) -> &mut Self {
        let d = self.defs[name].clone();
        assert!(!d.is_null(), "definition {name} missing");
        self.value(v, &d, "");
        self
    }

    fn value(&mut self, v: &Value, schema: &Value, path: &str) {
        if v.is_null() {
            return; // Graph and ARM print unset properties as null.
        }
        let s = self.resolve(schema);
        let ty = s.get("type").and_then(Value::as_str);
        let ok = match ty {
            Some("string") => v.is_string(),
            Some("boolean") => v.is_boolean(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("number") => v.is_number(),
            Some("array") => v.is_array(),
            Some("object") => v.is_object(),
            _ => true,
        };
        if !ok {
            self.errors
                .push(format!("{path}: expected {}, got {v}", ty.unwrap_or("?")));
            return;
        }
        if let Value::Array(items) = v {
            if let Some(item) = s.get("items").cloned() {
                for i in items {
                    self.value(i, &item, &format!("{path}[]"));
                }
            }
            return;
        }
        if let Value::Object(m) = v {
            let (props, required) = self.shape(&s);
            for r in &required {
                if !m.keys().any(|k| self.same(k, r)) {
                    self.errors.push(format!("{path}.{r}: required, missing"));
                }
            }
            for (k, val) in m {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match props.iter().find(|(p, _)| self.same(k, p)) {
                    Some((_, ps)) => {
                        let ps = ps.clone();
                        self.value(val, &ps, &sub);
                    }
                    None => {
                        // `additionalProperties` objects (tags) accept anything.
                        if s.get("additionalProperties").is_none_or(|a| !a.is_object())
                            || !props.is_empty()
                        {
                            self.unknown.insert(sub);
                        }
                    }
                }
            }
        }
    }

    fn same(&self, a: &str, b: &str) -> bool {
        if self.case_insensitive {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    }

    pub fn assert_valid(&self) {
        assert!(
            self.errors.is_empty(),
            "schema violations: {:#?}",
            self.errors
        );
    }
}
