//! kube-proxy's configuration, from a `KubeProxyConfiguration` file (or the kubeadm
//! `kube-proxy` ConfigMap that embeds one under `data."config.conf"`) and/or its command-line
//! flags. Only the fields that matter to the audit are read (upstream: `KubeProxyIPVSConfiguration`
//! in `k8s.io/kube-proxy/config/v1alpha1`, and `pkg/proxy/ipvs/proxier.go` of kubernetes):
//! `mode`, `ipvs.scheduler`, `ipvs.tcpTimeout`, `ipvs.tcpFinTimeout`, `ipvs.udpTimeout`,
//! `ipvs.strictARP`; flags `--proxy-mode`, `--ipvs-scheduler`, `--ipvs-tcp-timeout`,
//! `--ipvs-tcpfin-timeout`, `--ipvs-udp-timeout`, `--ipvs-strict-arp`.

use serde::Serialize;
use serde_norway::Value;

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// E.g. `kube-proxy config: ipvs.scheduler` or `kube-proxy flag --ipvs-scheduler`.
    pub source: String,
}

/// The kube-proxy settings the audit uses. Timeouts are in seconds; 0 means "not set" (leave
/// the kernel default), as in kube-proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KubeProxy {
    /// `mode` / `--proxy-mode` (`ipvs`, `iptables`, `nftables`, empty = platform default).
    pub mode: Option<Setting<String>>,
    /// `ipvs.scheduler` / `--ipvs-scheduler` (empty = `rr`).
    pub scheduler: Option<Setting<String>>,
    /// `ipvs.tcpTimeout` / `--ipvs-tcp-timeout`, seconds.
    pub tcp_timeout: Option<Setting<f64>>,
    /// `ipvs.tcpFinTimeout` / `--ipvs-tcpfin-timeout`, seconds.
    pub tcp_fin_timeout: Option<Setting<f64>>,
    /// `ipvs.udpTimeout` / `--ipvs-udp-timeout`, seconds.
    pub udp_timeout: Option<Setting<f64>>,
    /// `ipvs.strictARP` / `--ipvs-strict-arp`.
    pub strict_arp: Option<Setting<bool>>,
}

impl KubeProxy {
    /// Applies `other` over `self` (fields set in `other` win).
    pub fn overlay(mut self, other: KubeProxy) -> KubeProxy {
        macro_rules! take {
            ($f:ident) => {
                if other.$f.is_some() {
                    self.$f = other.$f;
                }
            };
        }
        take!(mode);
        take!(scheduler);
        take!(tcp_timeout);
        take!(tcp_fin_timeout);
        take!(udp_timeout);
        take!(strict_arp);
        self
    }

    /// The proxy mode, lower-cased, if set and non-empty.
    pub fn mode_name(&self) -> Option<String> {
        self.mode
            .as_ref()
            .map(|m| m.value.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty())
    }
}

/// Parses a Go `time.Duration` string (`900s`, `15m0s`, `1h`, `1.5h`, `300ms`, `0`) into seconds.
pub fn parse_go_duration(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0.0);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {s:?} has a number without a unit"))?;
        let (num, tail) = rest.split_at(num_end);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("bad number in duration {s:?}"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let mult = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        total += n * mult;
        rest = tail;
    }
    Ok(total)
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(Value::String(key.to_string()))
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses a `KubeProxyConfiguration` YAML document, or a ConfigMap embedding one.
pub fn parse_config(text: &str) -> Result<KubeProxy, String> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    if !doc.is_mapping() {
        return Err("expected a YAML mapping (a KubeProxyConfiguration)".into());
    }
    let kind = get(&doc, "kind").and_then(as_text).unwrap_or_default();
    if kind == "ConfigMap" {
        let data = get(&doc, "data").ok_or("ConfigMap has no data")?;
        let inner = data
            .as_mapping()
            .and_then(|m| {
                m.iter()
                    .filter_map(|(_, v)| v.as_str())
                    .find(|s| s.contains("KubeProxyConfiguration"))
            })
            .ok_or("ConfigMap data has no KubeProxyConfiguration (e.g. config.conf)")?;
        return parse_config(inner);
    }
    if !kind.is_empty() && kind != "KubeProxyConfiguration" {
        return Err(format!("kind is {kind:?}, expected KubeProxyConfiguration"));
    }
    let src = |f: &str| format!("kube-proxy config: {f}");
    let mut kp = KubeProxy {
        mode: get(&doc, "mode").and_then(as_text).map(|value| Setting {
            value,
            source: src("mode"),
        }),
        ..KubeProxy::default()
    };
    if let Some(ipvs) = get(&doc, "ipvs") {
        kp.scheduler = get(ipvs, "scheduler")
            .and_then(as_text)
            .map(|value| Setting {
                value,
                source: src("ipvs.scheduler"),
            });
        let dur = |key: &str| -> Result<Option<Setting<f64>>, String> {
            match get(ipvs, key).and_then(as_text) {
                None => Ok(None),
                Some(t) => Ok(Some(Setting {
                    value: parse_go_duration(&t).map_err(|e| format!("ipvs.{key}: {e}"))?,
                    source: src(&format!("ipvs.{key}")),
                })),
            }
        };
        kp.tcp_timeout = dur("tcpTimeout")?;
        kp.tcp_fin_timeout = dur("tcpFinTimeout")?;
        kp.udp_timeout = dur("udpTimeout")?;
        kp.strict_arp = match get(ipvs, "strictARP") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(Setting {
                value: *b,
                source: src("ipvs.strictARP"),
            }),
            Some(other) => {
                return Err(format!("ipvs.strictARP: expected a boolean, got {other:?}"));
            }
        };
    }
    Ok(kp)
}

/// Parses kube-proxy command-line flags (one string, shell quoting allowed). Unknown flags are
/// ignored; a malformed value of a known flag is an error.
pub fn parse_flags(flags: &str) -> Result<KubeProxy, String> {
    let words = shell_words::split(flags).map_err(|e| format!("cannot split flags: {e}"))?;
    let mut kp = KubeProxy::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let Some(flag) = w.strip_prefix("--").or_else(|| w.strip_prefix('-')) else {
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let is_bool = name == "ipvs-strict-arp";
        let known = matches!(
            name,
            "proxy-mode"
                | "ipvs-scheduler"
                | "ipvs-tcp-timeout"
                | "ipvs-tcpfin-timeout"
                | "ipvs-udp-timeout"
                | "ipvs-strict-arp"
        );
        if !known {
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None if is_bool => "true".to_string(),
            None => {
                let v = words
                    .get(i)
                    .cloned()
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                i += 1;
                v
            }
        };
        let source = format!("kube-proxy flag --{name}");
        let dur = |v: &str| {
            parse_go_duration(v)
                .map(|value| Setting {
                    value,
                    source: source.clone(),
                })
                .map_err(|e| format!("--{name}: {e}"))
        };
        match name {
            "proxy-mode" => {
                kp.mode = Some(Setting {
                    value,
                    source: source.clone(),
                })
            }
            "ipvs-scheduler" => {
                kp.scheduler = Some(Setting {
                    value,
                    source: source.clone(),
                })
            }
            "ipvs-tcp-timeout" => kp.tcp_timeout = Some(dur(&value)?),
            "ipvs-tcpfin-timeout" => kp.tcp_fin_timeout = Some(dur(&value)?),
            "ipvs-udp-timeout" => kp.udp_timeout = Some(dur(&value)?),
            "ipvs-strict-arp" => {
                let b = match value.as_str() {
                    "true" | "1" | "t" | "T" | "TRUE" | "True" => true,
                    "false" | "0" | "f" | "F" | "FALSE" | "False" => false,
                    other => return Err(format!("--ipvs-strict-arp: not a boolean: {other:?}")),
                };
                kp.strict_arp = Some(Setting {
                    value: b,
                    source: source.clone(),
                });
            }
            _ => {}
        }
    }
    Ok(kp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("900s").unwrap(), 900.0);
        assert_eq!(parse_go_duration("15m0s").unwrap(), 900.0);
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5400.0);
        assert_eq!(parse_go_duration("0").unwrap(), 0.0);
        assert_eq!(parse_go_duration("1.5s").unwrap(), 1.5);
        assert!(parse_go_duration("15").is_err());
        assert!(parse_go_duration("5d").is_err());
    }

    #[test]
    fn config_file() {
        let y = "apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
ipvs:
  scheduler: lc
  strictARP: true
  tcpTimeout: 0s
  tcpFinTimeout: 30s
  udpTimeout: 0s
";
        let kp = parse_config(y).unwrap();
        assert_eq!(kp.mode_name().as_deref(), Some("ipvs"));
        assert_eq!(kp.scheduler.unwrap().value, "lc");
        assert_eq!(kp.tcp_fin_timeout.unwrap().value, 30.0);
        assert!(kp.strict_arp.unwrap().value);
    }

    #[test]
    fn configmap() {
        let y = "apiVersion: v1
kind: ConfigMap
metadata:
  name: kube-proxy
data:
  config.conf: |-
    apiVersion: kubeproxy.config.k8s.io/v1alpha1
    kind: KubeProxyConfiguration
    mode: \"ipvs\"
    ipvs:
      scheduler: \"\"
";
        let kp = parse_config(y).unwrap();
        assert_eq!(kp.mode_name().as_deref(), Some("ipvs"));
        assert_eq!(kp.scheduler.unwrap().value, "");
        assert!(parse_config("kind: Pod\n").is_err());
        assert!(parse_config(": : :\n  - [").is_err());
    }

    #[test]
    fn flags() {
        let kp = parse_flags(
            "--proxy-mode=ipvs --ipvs-scheduler 'wrr' --v=2 --ipvs-strict-arp --ipvs-tcpfin-timeout=5s",
        )
        .unwrap();
        assert_eq!(kp.mode_name().as_deref(), Some("ipvs"));
        assert_eq!(kp.scheduler.as_ref().unwrap().value, "wrr");
        assert!(kp.strict_arp.as_ref().unwrap().value);
        assert_eq!(kp.tcp_fin_timeout.as_ref().unwrap().value, 5.0);
        assert!(parse_flags("--ipvs-scheduler").is_err());
        assert!(parse_flags("--proxy-mode 'ipvs").is_err());
        let merged = KubeProxy::default().overlay(kp);
        assert!(merged.mode.is_some());
    }
}
