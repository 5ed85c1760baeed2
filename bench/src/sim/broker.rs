//! The broker the simulator benchmark publishes to, in a child process so that its CPU and memory
//! are not counted as the simulator's: Mosquitto (the reference broker) when installed, else the
//! embedded rumqttd run by this same executable (`dustwatch-bench broker`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A broker child process, stopped on drop.
pub enum BrokerProcess {
    Mosquitto(dustwatch_testkit::Mosquitto),
    Embedded { port: u16, child: Child },
}

impl BrokerProcess {
    /// Mosquitto unless `embedded` is asked for or it is not installed.
    pub fn start(embedded: bool) -> std::io::Result<BrokerProcess> {
        if !embedded && dustwatch_testkit::mosquitto_binary().is_some() {
            if let Some(m) = dustwatch_testkit::Mosquitto::start() {
                return Ok(BrokerProcess::Mosquitto(m));
            }
        }
        let exe = std::env::current_exe()?;
        Self::embedded(&exe)
    }

    fn embedded(exe: &Path) -> std::io::Result<BrokerProcess> {
        let port = dustwatch_testkit::free_port();
        let child = Command::new(exe)
            .args(["broker", "--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .spawn()?;
        dustwatch_testkit::wait_port(port);
        Ok(BrokerProcess::Embedded { port, child })
    }

    pub fn name(&self) -> &'static str {
        match self {
            BrokerProcess::Mosquitto(_) => "mosquitto",
            BrokerProcess::Embedded { .. } => "embedded rumqttd",
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            BrokerProcess::Mosquitto(m) => m.port(),
            BrokerProcess::Embedded { port, .. } => *port,
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let BrokerProcess::Embedded { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `dustwatch-bench broker`: the embedded broker until killed.
pub fn run_embedded(listen: SocketAddr) -> anyhow::Result<()> {
    let broker = dustwatch_broker::EmbeddedBroker::start(&dustwatch_broker::BrokerConfig {
        listen,
        ..Default::default()
    })?;
    eprintln!("embedded broker on {}", broker.addr());
    loop {
        std::thread::park();
    }
}
