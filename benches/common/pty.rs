//! Running a binary in a pseudo-terminal and reading what it draws.
#![allow(dead_code)]

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use nix::pty::{openpty, Winsize};

/// A child whose stdin, stdout and stderr are the slave side of a fresh pty.
/// A thread reads the master side and sends every chunk, stamped when read.
pub struct PtyChild {
    pub child: Child,
    pub output: mpsc::Receiver<(Instant, Vec<u8>)>,
    /// Kept open so the child's terminal stays alive while we read.
    _master: OwnedFd,
}

pub fn spawn(command: &mut Command, cols: u16, rows: u16) -> PtyChild {
    let size = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&size), None).expect("openpty");
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty slave"));
    command
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        // Its own group, so a signal we send the group never reaches us.
        .process_group(0);
    let child = command.spawn().expect("spawn in pty");
    drop(pty.slave);
    let (tx, output) = mpsc::channel();
    let mut reader = std::fs::File::from(pty.master.try_clone().expect("dup pty master"));
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    PtyChild {
        child,
        output,
        _master: pty.master,
    }
}

impl PtyChild {
    /// Reads everything written so far into the screen model, without waiting.
    pub fn drain_into(&self, screen: &mut vt100::Parser) {
        while let Ok((_, bytes)) = self.output.try_recv() {
            screen.process(&bytes);
        }
    }
}
