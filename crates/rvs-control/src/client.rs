//! A blocking client of the admin socket, and `rvs_adm::Backend` over it.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rvs_core::command::{AdmError, Command, Timeouts};
use rvs_core::snapshot::{ConnView, InfoView, ServiceView, TotalsView};

use crate::proto::{self, Request, Response};

/// How long a request may take before the client gives up (a reload of a large file or a
/// listing of a million connections stays far below).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why talking to the daemon failed.
#[derive(Debug)]
pub enum ClientError {
    /// No daemon listens on the socket.
    NotRunning(PathBuf, io::Error),
    /// The socket exists but this user may not open it.
    PermissionDenied(PathBuf),
    /// The connection broke or the daemon answered nonsense.
    Io(PathBuf, String),
    /// The daemon answered with a response of another kind than the request expects.
    Unexpected(Response),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotRunning(p, e) => write!(
                f,
                "rvs daemon is not running: cannot connect to {} ({e}); start it with \
                 `rvs daemon --config FILE`, or point {} at its socket",
                p.display(),
                proto::SOCKET_ENV
            ),
            ClientError::PermissionDenied(p) => write!(
                f,
                "permission denied on {}: the admin socket is only open to root (mode 0600); \
                 run this command as root",
                p.display()
            ),
            ClientError::Io(p, e) => write!(f, "talking to the rvs daemon at {}: {e}", p.display()),
            ClientError::Unexpected(r) => match r {
                Response::Error(m) => f.write_str(m),
                Response::Adm(e) => write!(f, "{e}"),
                other => write!(f, "unexpected answer from the rvs daemon: {other:?}"),
            },
        }
    }
}

impl std::error::Error for ClientError {}

/// The socket path: `$RVS_SOCKET`, else [`proto::DEFAULT_SOCKET`].
pub fn socket_path() -> PathBuf {
    std::env::var_os(proto::SOCKET_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(proto::DEFAULT_SOCKET))
}

/// A connection to the daemon.
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let s = UnixStream::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(path.into()),
            _ => ClientError::NotRunning(path.into(), e),
        })?;
        let io = |e: io::Error| ClientError::Io(path.into(), e.to_string());
        s.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(io)?;
        s.set_write_timeout(Some(REQUEST_TIMEOUT)).map_err(io)?;
        let w = s.try_clone().map_err(io)?;
        Ok(Client {
            path: path.into(),
            reader: BufReader::new(s),
            writer: w,
        })
    }

    /// Sends one request and waits for its response.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let io = |e: io::Error| ClientError::Io(self.path.clone(), e.to_string());
        self.writer.write_all(&proto::encode(req)).map_err(io)?;
        let mut line = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut line)
            .map_err(|e| ClientError::Io(self.path.clone(), e.to_string()))?;
        if n == 0 {
            return Err(ClientError::Io(
                self.path.clone(),
                "the daemon closed the connection".into(),
            ));
        }
        proto::decode(&line).map_err(|e| ClientError::Io(self.path.clone(), e))
    }
}

/// `rvs_adm::Backend` over the socket. The trait's methods cannot fail, so a transport
/// failure is remembered in [`AdmBackend::error`] (and the method returns an empty value, or
/// `AdmError::Invalid` for `apply`); the caller prints it and exits non-zero.
pub struct AdmBackend {
    client: Client,
    /// The first transport failure, if any.
    pub error: Option<ClientError>,
}

impl AdmBackend {
    /// A backend over a connected client.
    pub fn new(client: Client) -> Self {
        AdmBackend {
            client,
            error: None,
        }
    }

    fn call(&mut self, req: Request) -> Option<Response> {
        if self.error.is_some() {
            return None;
        }
        match self.client.call(&req) {
            Ok(r) => Some(r),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    fn fail(&mut self, r: Response) {
        if self.error.is_none() {
            self.error = Some(ClientError::Unexpected(r));
        }
    }
}

macro_rules! view {
    ($self:ident, $req:expr, $variant:ident, $default:expr) => {
        match $self.call($req) {
            Some(Response::$variant(v)) => v,
            Some(other) => {
                $self.fail(other);
                $default
            }
            None => $default,
        }
    };
}

impl rvs_adm::Backend for AdmBackend {
    fn apply(&mut self, cmd: Command) -> Result<(), AdmError> {
        match self.call(Request::Apply(cmd)) {
            Some(Response::Done) => Ok(()),
            Some(Response::Adm(e)) => Err(e),
            Some(other) => {
                let msg = format!("{}", ClientError::Unexpected(other.clone()));
                self.fail(other);
                Err(AdmError::Invalid(msg))
            }
            None => Err(AdmError::Invalid("no daemon".into())),
        }
    }
    fn info(&mut self) -> InfoView {
        view!(
            self,
            Request::Info,
            Info,
            InfoView {
                version: rvs_core::snapshot::IPVS_VERSION,
                conn_tab_size: 0,
                conn_count: 0,
                conn_max: 0,
            }
        )
    }
    fn services(&mut self) -> Vec<ServiceView> {
        view!(self, Request::Services, Services, Vec::new())
    }
    fn conns(&mut self) -> Vec<ConnView> {
        view!(self, Request::Conns, Conns, Vec::new())
    }
    fn timeouts(&mut self) -> Timeouts {
        view!(
            self,
            Request::Timeouts,
            Timeouts,
            Timeouts {
                tcp: 0,
                tcpfin: 0,
                udp: 0
            }
        )
    }
    fn totals(&mut self) -> TotalsView {
        view!(self, Request::Totals, Totals, TotalsView::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_says_the_daemon_is_not_running() {
        let p = std::env::temp_dir().join(format!("rvs-no-such-{}.sock", std::process::id()));
        let e = Client::connect(&p).err().expect("no socket there");
        let msg = e.to_string();
        assert!(msg.contains("rvs daemon is not running"), "{msg}");
        assert!(msg.contains(&p.display().to_string()), "{msg}");
    }

    #[test]
    fn a_fake_daemon_answers_over_the_socket() {
        use std::os::unix::net::UnixListener;
        let p = std::env::temp_dir().join(format!("rvs-fake-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let l = UnixListener::bind(&p).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            for _ in 0..2 {
                let mut line = Vec::new();
                r.read_until(b'\n', &mut line).unwrap();
                let req: Request = proto::decode(&line).unwrap();
                let resp = match req {
                    Request::Timeouts => Response::Timeouts(Timeouts {
                        tcp: 900,
                        tcpfin: 120,
                        udp: 300,
                    }),
                    _ => Response::Adm(AdmError::NoService),
                };
                w.write_all(&proto::encode(&resp)).unwrap();
            }
        });
        let mut b = AdmBackend::new(Client::connect(&p).unwrap());
        use rvs_adm::Backend;
        assert_eq!(b.timeouts().tcp, 900);
        assert_eq!(b.apply(Command::Flush), Err(AdmError::NoService));
        assert!(b.error.is_none());
        t.join().unwrap();
        let _ = std::fs::remove_file(&p);
    }
}
