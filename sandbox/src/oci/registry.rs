//! A client for the Distribution API (what `docker pull` speaks): manifests
//! and blobs over HTTPS (rustls) or, for loopback and listed insecure
//! registries, plain HTTP; anonymous, Basic, and Bearer token auth; mirrors
//! tried before the registry itself.
//!
//! Why not the `oci-client` crate: it is well made, but it owns the pull
//! (all blobs into memory or its own stream API), has no notion of mirrors,
//! and leaves redirects to reqwest's policy. We need a blob to stream into a
//! verified store file with progress, a layer we already have to be skipped
//! before any request, mirrors in front of Docker Hub, and redirects (blob
//! storage on S3 and CDNs) that never carry our credentials to another host.
//! Those are a few hundred lines on top of reqwest (hyper underneath, already
//! in the workspace), with redirects followed here rather than by reqwest.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::reference::{Reference, DOCKER_HUB};
use super::Error;

/// The host that serves `docker.io` references.
const DOCKER_HUB_ENDPOINT: &str = "https://registry-1.docker.io";
const MAX_REDIRECTS: usize = 5;

/// How the store reaches registries. The server fills it from its settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RegistrySettings {
    /// Mirrors, tried in order before the registry they mirror. A classroom
    /// points `docker.io` at a local pull-through cache this way.
    #[serde(default)]
    pub mirrors: Vec<Mirror>,
    /// Registries (`host` or `host:port`) reached over plain HTTP. Loopback
    /// addresses and `localhost` always are.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Where `docker.io` references are pulled from instead of Docker Hub's
    /// own endpoint (an URL such as `https://hub.example.org`).
    #[serde(default)]
    pub docker_hub_endpoint: Option<String>,
    #[serde(default)]
    pub credentials: Vec<Credentials>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mirror {
    /// The registry this mirrors, as in references: `docker.io`.
    pub registry: String,
    /// Its base URL: `http://10.0.0.2:5000`.
    pub url: String,
}

/// Username and password for one registry host (the mirror's own host for a
/// mirror); offered to Basic challenges and to that registry's token service.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub registry: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}@{})", self.username, self.registry)
    }
}

#[derive(Clone)]
enum Auth {
    Basic(String, String),
    Bearer(String),
}

/// One place to pull a repository from: a mirror or the registry itself.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `scheme://host[:port]`.
    base: Url,
    /// Repository path on that endpoint.
    repository: String,
}

impl Endpoint {
    pub fn describe(&self) -> String {
        format!("{}{}", self.base, self.repository)
    }
}

pub struct RegistryClient {
    http: reqwest::Client,
    settings: RegistrySettings,
    /// Auth that worked, per endpoint origin and scope.
    cache: Mutex<HashMap<(String, String), Auth>>,
}

impl RegistryClient {
    pub fn new(settings: RegistrySettings) -> Result<RegistryClient, Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("playground/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Registry(format!("HTTP client: {e}")))?;
        Ok(RegistryClient {
            http,
            settings,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Where to look for `reference`, in order: its mirrors, then itself.
    pub fn endpoints(&self, reference: &Reference) -> Result<Vec<Endpoint>, Error> {
        let mut bases = Vec::new();
        for mirror in &self.settings.mirrors {
            if mirror.registry == reference.domain {
                bases.push(parse_base(&mirror.url)?);
            }
        }
        let own = if reference.domain == DOCKER_HUB {
            let hub = self.settings.docker_hub_endpoint.as_deref();
            parse_base(hub.unwrap_or(DOCKER_HUB_ENDPOINT))?
        } else {
            let scheme = if self.is_insecure(&reference.domain) {
                "http"
            } else {
                "https"
            };
            parse_base(&format!("{scheme}://{}", reference.domain))?
        };
        bases.push(own);
        Ok(bases
            .into_iter()
            .map(|base| Endpoint {
                base,
                repository: reference.path.clone(),
            })
            .collect())
    }

    fn is_insecure(&self, host_port: &str) -> bool {
        self.settings.insecure.iter().any(|h| h == host_port) || {
            let host = Url::parse(&format!("http://{host_port}"))
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            is_loopback(&host)
        }
    }

    /// The manifest `reference` (a tag or digest) and its content type.
    pub async fn manifest(
        &self,
        endpoint: &Endpoint,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let path = format!("/v2/{}/manifests/{reference}", endpoint.repository);
        let mut response = self
            .get(endpoint, &path, Some(super::manifest::ACCEPT))
            .await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            body.extend_from_slice(&chunk);
            if body.len() > 4 << 20 {
                return Err(Error::Invalid("manifest larger than 4 MiB".into()));
            }
        }
        Ok((body, content_type))
    }

    /// Stream blob `digest` (of `size` bytes) into `sink`, reporting the
    /// bytes so far to `progress`. The caller checks the digest.
    pub async fn blob(
        &self,
        endpoint: &Endpoint,
        digest: &Digest,
        size: u64,
        sink: &mut impl Write,
        mut progress: impl FnMut(u64),
    ) -> Result<(), Error> {
        let path = format!("/v2/{}/blobs/{digest}", endpoint.repository);
        let mut response = self.get(endpoint, &path, None).await?;
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            received += chunk.len() as u64;
            if received > size {
                return Err(Error::Invalid(format!(
                    "blob {digest} is larger than its {size} bytes"
                )));
            }
            sink.write_all(&chunk)?;
            progress(received);
        }
        Ok(())
    }

    /// GET `path` on the endpoint, answering an auth challenge once and
    /// following redirects; a successful response or an error.
    async fn get(
        &self,
        endpoint: &Endpoint,
        path: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Error> {
        let url = endpoint
            .base
            .join(path)
            .map_err(|e| Error::Invalid(format!("bad registry path {path}: {e}")))?;
        let scope = format!("repository:{}:pull", endpoint.repository);
        let key = (endpoint.base.origin().ascii_serialization(), scope.clone());
        let mut auth = self.cache.lock().unwrap().get(&key).cloned();
        let mut challenged = false;
        loop {
            let response = self.follow(&url, auth.as_ref(), accept).await?;
            if response.status() == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let fresh = self.answer(&endpoint.base, &challenge, &scope).await?;
                self.cache
                    .lock()
                    .unwrap()
                    .insert(key.clone(), fresh.clone());
                auth = Some(fresh);
                continue;
            }
            return check_status(response).await;
        }
    }

    /// One request, following redirects. Credentials go only to the origin
    /// of `url`: a redirect to blob storage elsewhere gets none.
    async fn follow(
        &self,
        url: &Url,
        auth: Option<&Auth>,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Error> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.http.get(current.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if current.origin() == url.origin() {
                request = match auth {
                    Some(Auth::Basic(user, password)) => request.basic_auth(user, Some(password)),
                    Some(Auth::Bearer(token)) => request.bearer_auth(token),
                    None => request,
                };
            }
            let response = request.send().await.map_err(http_error)?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Error::Registry("redirect without a location".into()))?;
            let next = current
                .join(location)
                .map_err(|e| Error::Registry(format!("bad redirect {location:?}: {e}")))?;
            if next.scheme() == "http" && current.scheme() == "https" {
                return Err(Error::Registry(format!(
                    "refusing a redirect from HTTPS to plain HTTP ({next})"
                )));
            }
            current = next;
        }
        Err(Error::Registry(format!("too many redirects for {url}")))
    }

    /// Credentials for a `Basic` or `Bearer` challenge from `base`.
    async fn answer(&self, base: &Url, challenge: &str, scope: &str) -> Result<Auth, Error> {
        let credentials = self.credentials_for(base);
        let (scheme, params) = parse_challenge(challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => credentials
                .map(|c| Auth::Basic(c.username.clone(), c.password.clone()))
                .ok_or_else(|| {
                    Error::Unauthorized(format!("{base} wants a username and password"))
                }),
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or_else(|| Error::Registry("Bearer challenge without realm".into()))?;
                let mut token_url = Url::parse(realm)
                    .map_err(|e| Error::Registry(format!("bad token realm {realm:?}: {e}")))?;
                {
                    let mut query = token_url.query_pairs_mut();
                    if let Some(service) = params.get("service") {
                        query.append_pair("service", service);
                    }
                    query.append_pair("scope", params.get("scope").map_or(scope, |s| s));
                }
                let mut request = self.http.get(token_url.clone());
                if let Some(c) = credentials {
                    let plain = token_url.scheme() == "http"
                        && !token_url.host_str().is_some_and(is_loopback)
                        && !self.is_insecure(token_url.host_str().unwrap_or(""));
                    if plain {
                        return Err(Error::Unauthorized(format!(
                            "refusing to send credentials to {token_url} over plain HTTP"
                        )));
                    }
                    request = request.basic_auth(&c.username, Some(&c.password));
                }
                let response = check_status(request.send().await.map_err(http_error)?).await?;
                #[derive(Deserialize)]
                struct TokenResponse {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let body: TokenResponse = response
                    .json()
                    .await
                    .map_err(|e| Error::Registry(format!("token service answer: {e}")))?;
                body.token
                    .or(body.access_token)
                    .filter(|t| !t.is_empty())
                    .map(Auth::Bearer)
                    .ok_or_else(|| Error::Unauthorized("token service gave no token".into()))
            }
            _ => Err(Error::Unauthorized(format!(
                "{base} answered 401 with challenge {challenge:?}"
            ))),
        }
    }

    fn credentials_for(&self, base: &Url) -> Option<&Credentials> {
        let host_port = match (base.host_str(), base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => return None,
        };
        let hub_host = base.host_str() == Url::parse(DOCKER_HUB_ENDPOINT).unwrap().host_str();
        self.settings
            .credentials
            .iter()
            .find(|c| c.registry == host_port || (hub_host && c.registry == DOCKER_HUB))
    }
}

fn parse_base(text: &str) -> Result<Url, Error> {
    let url =
        Url::parse(text).map_err(|e| Error::Invalid(format!("bad registry URL {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Invalid(format!("bad registry URL {text:?}")));
    }
    Ok(url)
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `Bearer realm="https://auth",service="reg",scope="repository:x:pull"`
/// into its scheme and parameters.
fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(key, value);
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_owned(), params)
}

fn http_error(e: reqwest::Error) -> Error {
    Error::Registry(format!("{e}"))
}

/// The response if it succeeded, else an error with the registry's message.
async fn check_status(response: reqwest::Response) -> Result<reqwest::Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let url = response.url().clone();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect());
    let text = format!("{status} from {url}: {message}");
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized(text),
        StatusCode::NOT_FOUND => Error::NotFound(text),
        _ => Error::Registry(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(params["realm"], "https://auth.docker.io/token");
        assert_eq!(params["service"], "registry.docker.io");
        assert_eq!(params["scope"], "repository:library/busybox:pull");
        let (scheme, params) = parse_challenge(r#"Basic realm="a \"b\"", charset=UTF-8"#);
        assert_eq!(scheme, "Basic");
        assert_eq!(params["realm"], r#"a "b""#);
        assert_eq!(params["charset"], "UTF-8");
    }

    #[test]
    fn endpoints_put_mirrors_first_and_loopback_on_http() {
        let client = RegistryClient::new(RegistrySettings {
            mirrors: vec![Mirror {
                registry: "docker.io".into(),
                url: "http://10.0.0.2:5000".into(),
            }],
            ..Default::default()
        })
        .unwrap();
        let hub = client.endpoints(&"busybox".parse().unwrap()).unwrap();
        let bases: Vec<_> = hub.iter().map(|e| e.base.as_str().to_owned()).collect();
        assert_eq!(
            bases,
            ["http://10.0.0.2:5000/", "https://registry-1.docker.io/"]
        );
        assert_eq!(hub[0].repository, "library/busybox");
        let local = client
            .endpoints(&"127.0.0.1:5000/x".parse().unwrap())
            .unwrap();
        assert_eq!(local[0].base.as_str(), "http://127.0.0.1:5000/");
        let remote = client.endpoints(&"ghcr.io/x/y".parse().unwrap()).unwrap();
        assert_eq!(remote[0].base.as_str(), "https://ghcr.io/");
    }
}
