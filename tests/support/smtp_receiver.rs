//! A minimal SMTP receiver for tests (no STARTTLS, no AUTH) that records each message.
//! Shared by the notification tests and the behavioural suite (`#[path]` include).

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
}

#[derive(Clone, Default)]
pub struct SmtpBox {
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpBox {
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

/// Starts a minimal SMTP server (no STARTTLS, no AUTH). With `reject_rcpt`
/// every RCPT TO gets 550.
pub async fn start_smtp(reject_rcpt: bool) -> (u16, SmtpBox) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailbox = SmtpBox::default();
    let mb = mailbox.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let mb = mb.clone();
            tokio::spawn(async move {
                let _ = smtp_session(sock, mb, reject_rcpt).await;
            });
        }
    });
    (port, mailbox)
}

async fn smtp_session(
    sock: tokio::net::TcpStream,
    mb: SmtpBox,
    reject_rcpt: bool,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 test.local ESMTP ready\r\n").await?;
    let mut cur = Mail::default();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            w.write_all(b"250-test.local greets you\r\n250 SIZE 10000000\r\n")
                .await?;
        } else if upper.starts_with("HELO") {
            w.write_all(b"250 test.local\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            cur = Mail {
                mail_from: strip_angle(&cmd[10..]),
                ..Mail::default()
            };
            w.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            if reject_rcpt {
                w.write_all(b"550 5.1.1 mailbox unavailable\r\n").await?;
            } else {
                cur.rcpt_to.push(strip_angle(&cmd[8..]));
                w.write_all(b"250 OK\r\n").await?;
            }
        } else if upper == "DATA" {
            w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                // Undo dot-stuffing (RFC 5321 4.5.2).
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            cur.data = data;
            mb.mails.lock().unwrap().push(std::mem::take(&mut cur));
            w.write_all(b"250 OK queued\r\n").await?;
        } else if upper == "RSET" || upper == "NOOP" {
            w.write_all(b"250 OK\r\n").await?;
        } else if upper == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            w.write_all(b"502 command not implemented\r\n").await?;
        }
    }
}

fn strip_angle(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or("");
    s.trim_start_matches('<').trim_end_matches('>').to_string()
}
