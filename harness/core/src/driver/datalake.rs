//! Data Lake Store Gen1 steps: `provision = "datalake_store"` (ARM) and `grant = "adls_acl"`
//! (WebHDFS `MODIFYACLENTRIES` as the deployer, the account's super-user).

use serde_json::{Value, json};

use super::{Run, StepError, StepRecord};
use crate::backend::{HttpRequest, Route};
use crate::model::{ProvisionKind, Step, StepKind};

const DATALAKE_API: &str = "2016-11-01";
/// The audience Data Lake Store accepts (with the trailing slash).
pub(super) const DATALAKE_RESOURCE: &str = "https://datalake.azure.net/";

/// `https://<endpoint>` for the bare host the service returns; an endpoint that already
/// carries a scheme (a loopback fake) is used as is.
pub(super) fn endpoint_url(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if e.contains("://") {
        e.to_string()
    } else {
        format!("https://{e}")
    }
}

/// The aclspec of one principal: the access entry, plus the default entry when asked.
pub(super) fn aclspec(principal: &str, permissions: &str, default: bool) -> String {
    let access = format!("user:{principal}:{permissions}");
    if default {
        format!("{access},default:{access}")
    } else {
        access
    }
}

impl Run<'_> {
    pub(super) async fn datalake_store(
        &mut self,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let ep = self.env.endpoints().clone();
        let name = self.req_field(step, "name")?;
        let rg = self.req_field(step, "resource_group")?;
        let location = self
            .str_field(step, "location")?
            .unwrap_or_else(|| ep.location.clone());
        let api = self
            .str_field(step, "api_version")?
            .unwrap_or_else(|| DATALAKE_API.into());
        let path = format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.DataLakeStore/accounts/{name}",
            ep.subscription_id
        );
        let put = self
            .arm(
                "PUT",
                &path,
                &api,
                Some(&json!({"location": location})),
                record,
            )
            .await?;
        if !Self::response(record, put)?.is_success() {
            record.primary = Some(put);
            return Ok(None);
        }
        let get = self.arm("GET", &path, &api, None, record).await?;
        record.primary = Some(get);
        let body = Self::response(record, get)?.json().unwrap_or(Value::Null);
        let endpoint = body
            .pointer("/properties/endpoint")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Some(json!({
            "id": body.get("id").cloned().unwrap_or(json!(path)),
            "name": name,
            "endpoint": endpoint,
            "url": endpoint_url(&endpoint),
        })))
    }

    /// The WebHDFS base URL of an account provisioned earlier in this scenario.
    fn datalake_account_url(&self, account: &str) -> Result<String, StepError> {
        self.scenario
            .steps
            .iter()
            .filter(|s| matches!(s.kind.value, StepKind::Provision(ProvisionKind::DatalakeStore)))
            .filter_map(|s| self.bindings.get_root(&s.id.value))
            .find(|v| v.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(account)))
            .and_then(|v| v.get("url").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| StepError(format!("no `provision = \"datalake_store\"` step created an account named `{account}` before this step")))
    }

    pub(super) async fn adls_acl(
        &mut self,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let account = self.req_field(step, "account")?;
        let path = self.req_field(step, "path")?;
        let principal = self.req_field(step, "principal")?;
        let permissions = self.req_field(step, "permissions")?;
        let default = step.fields.bool("default").unwrap_or(false);
        let base = self.datalake_account_url(&account)?;
        let spec = aclspec(&principal, &permissions, default);
        let path = format!("/{}", path.trim_start_matches('/'));
        let encoded =
            percent_encoding::utf8_percent_encode(&spec, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let url = format!("{base}/webhdfs/v1{path}?op=MODIFYACLENTRIES&aclspec={encoded}");
        let token = self.deployer_token_for(DATALAKE_RESOURCE).await?;
        let req = HttpRequest::new("PUT", url).header("Authorization", format!("Bearer {token}"));
        let i = self.send(Route::Direct, req, record).await;
        record.primary = Some(i);
        let resp = Self::response(record, i)?;
        if !resp.is_success() {
            return Err(StepError(format!(
                "MODIFYACLENTRIES on {path} failed with {}: {}",
                resp.status,
                resp.text()
            )));
        }
        Ok(Some(json!({"aclspec": spec})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_specs() {
        assert_eq!(
            endpoint_url("acct.azuredatalakestore.net"),
            "https://acct.azuredatalakestore.net"
        );
        assert_eq!(endpoint_url("http://127.0.0.1:5/"), "http://127.0.0.1:5");
        assert_eq!(aclspec("oid", "r-x", false), "user:oid:r-x");
        assert_eq!(
            aclspec("oid", "rwx", true),
            "user:oid:rwx,default:user:oid:rwx"
        );
    }
}
