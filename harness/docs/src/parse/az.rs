//! Azure CLI command lines.

use super::ParseError;
use serde::Serialize;

/// One `az` invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AzCommand {
    /// Command path, e.g. `["vm", "identity", "assign"]`.
    pub path: Vec<String>,
    /// Arguments with long names (`--resource-group`), short aliases expanded.
    /// Multi-value options keep all values.
    pub args: Vec<(String, Vec<String>)>,
    pub issues: Vec<String>,
}

impl AzCommand {
    pub fn path_str(&self) -> String {
        self.path.join(" ")
    }

    /// First value of an argument (long name without dashes, e.g. `resource-group`).
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }

    pub fn values(&self, name: &str) -> &[String] {
        self.args
            .iter()
            .find(|(k, _)| k == name)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    pub fn has(&self, name: &str) -> bool {
        self.args.iter().any(|(k, _)| k == name)
    }

    pub fn is(&self, path: &str) -> bool {
        self.path_str() == path
    }
}

fn expand_short(flag: &str, path: &[String]) -> Option<&'static str> {
    Some(match flag {
        "-g" => "resource-group",
        "-n" => "name",
        "-l" => "location",
        "-o" => "output",
        "-s" if path.first().is_some_and(|p| p == "role") => "scope",
        "-c" if path.first().is_some_and(|p| p == "cosmosdb") => "collection-name",
        "-d" if path.first().is_some_and(|p| p == "cosmosdb") => "db-name",
        "-h" => "help",
        _ => return None,
    })
}

/// Parse a logical line starting with `az`.
pub fn parse(line: &str) -> Result<AzCommand, ParseError> {
    let tokens: Vec<String> = shell_words::split(&crate::placeholder::protect(line))
        .map_err(|e| ParseError::Quoting(e.to_string()))?
        .iter()
        .map(|t| crate::placeholder::unprotect(t))
        .collect();
    let start = tokens
        .iter()
        .position(|t| t == "az" || t.ends_with("$(az"))
        .ok_or(ParseError::NotThisTool("az"))?;
    let subshell = tokens[start] != "az";
    let mut tokens = tokens;
    if subshell
        && let Some(last) = tokens.last_mut()
        && last.ends_with(')')
    {
        last.pop();
    }
    let mut path = Vec::new();
    let mut i = start + 1;
    while i < tokens.len() && !tokens[i].starts_with('-') {
        if matches!(tokens[i].as_str(), "|" | ";" | "&&" | ">") {
            break;
        }
        path.push(tokens[i].clone());
        i += 1;
    }
    let mut args: Vec<(String, Vec<String>)> = Vec::new();
    let mut issues = Vec::new();
    while i < tokens.len() {
        let t = &tokens[i];
        if matches!(t.as_str(), "|" | ";" | "&&" | ">") {
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) if !n.contains('.') => (n.to_string(), Some(v.to_string())),
                _ => (long.to_string(), None),
            };
            let mut values: Vec<String> = inline.into_iter().collect();
            i += 1;
            while i < tokens.len()
                && !tokens[i].starts_with('-')
                && !matches!(tokens[i].as_str(), "|" | ";" | "&&" | ">")
            {
                values.push(tokens[i].clone());
                i += 1;
            }
            args.push((name, values));
        } else if t.starts_with('-') && t.len() > 1 {
            let name = if let Some(n) = expand_short(t, &path) {
                n.to_string()
            } else {
                // Single-letter short options are command specific; a longer word after a
                // single dash is a long option missing its second dash.
                if t.chars().count() > 2 {
                    issues.push(format!(
                        "`{t}` is a long option written with one dash (az long options take `--`)"
                    ));
                }
                t.trim_start_matches('-').to_string()
            };
            let mut values = Vec::new();
            i += 1;
            while i < tokens.len()
                && !tokens[i].starts_with('-')
                && !matches!(tokens[i].as_str(), "|" | ";" | "&&" | ">")
            {
                values.push(tokens[i].clone());
                i += 1;
            }
            args.push((name, values));
        } else {
            issues.push(format!("stray argument `{t}`"));
            i += 1;
        }
    }
    Ok(AzCommand { path, args, issues })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("az group create --name <RESOURCE GROUP> --location <LOCATION>", "group create", &[("name", "<RESOURCE GROUP>"), ("location", "<LOCATION>")])]
    #[case("az identity create -g rgPrivate -n msiServiceApp", "identity create", &[("resource-group", "rgPrivate"), ("name", "msiServiceApp")])]
    #[case("az vm create --resource-group myResourceGroup --name myVM --image win2016datacenter --generate-ssh-keys --assign-identity --admin-username azureuser --admin-password myPassword12", "vm create", &[("resource-group", "myResourceGroup"), ("name", "myVM"), ("image", "win2016datacenter"), ("generate-ssh-keys", ""), ("assign-identity", ""), ("admin-username", "azureuser"), ("admin-password", "myPassword12")])]
    #[case("az vm identity assign -g myResourceGroup -n myVm --identities <USER ASSIGNED IDENTITY>", "vm identity assign", &[("resource-group", "myResourceGroup"), ("name", "myVm"), ("identities", "<USER ASSIGNED IDENTITY>")])]
    #[case("az vm update -n myVM -g myResourceGroup --set identity.type=\"none\"", "vm update", &[("name", "myVM"), ("resource-group", "myResourceGroup"), ("set", "identity.type=none")])]
    #[case("az role assignment create --assignee 9391e5b1 --role Reader --scope /subscriptions/x/resourcegroups/rg", "role assignment create", &[("assignee", "9391e5b1"), ("role", "Reader"), ("scope", "/subscriptions/x/resourcegroups/rg")])]
    #[case("az resource show --id /subscriptions/<SUBSCRIPTION ID>/resourceGroups/<RESOURCE GROUP>/providers/Microsoft.Compute/virtualMachines/<VM NAME> --api-version 2017-12-01", "resource show", &[("id", "/subscriptions/<SUBSCRIPTION ID>/resourceGroups/<RESOURCE GROUP>/providers/Microsoft.Compute/virtualMachines/<VM NAME>"), ("api-version", "2017-12-01")])]
    #[case("az account get-access-token --resource \"https://graph.windows.net/\"", "account get-access-token", &[("resource", "https://graph.windows.net/")])]
    #[case("az login --identity", "login", &[("identity", "")])]
    #[case("az vmss identity remove -g myResourceGroup -n myVMSS --identities myUserAssignedIdentity", "vmss identity remove", &[("resource-group", "myResourceGroup"), ("name", "myVMSS"), ("identities", "myUserAssignedIdentity")])]
    #[case("az vm assign-identity -g <RESOURCE GROUP> -n <VM NAME> --identities <MSI ID>", "vm assign-identity", &[("resource-group", "<RESOURCE GROUP>"), ("name", "<VM NAME>"), ("identities", "<MSI ID>")])]
    fn parses(#[case] line: &str, #[case] path: &str, #[case] args: &[(&str, &str)]) {
        let c = parse(line).unwrap();
        assert_eq!(c.path_str(), path);
        let got: Vec<(String, String)> = c
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.join(" ")))
            .collect();
        let want: Vec<(String, String)> = args
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn single_dash_long_option_is_an_issue() {
        let c =
            parse("az cosmosdb collection show -c x -d y --url-connection \"u\" -key <ACCESS KEY>")
                .unwrap();
        assert_eq!(c.issues.len(), 1, "{:?}", c.issues);
    }
}
