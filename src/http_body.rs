//! Reading an HTTP answer's body with a ceiling: a broken or hostile server
//! that streams without end is refused at the cap, not held in memory until
//! the request's timeout.

/// The body of `response`, read as it arrives; an error past `max` bytes.
pub async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| broke_off(&e))? {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is larger than {}", size(max)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An HTML error page (a proxy's, a web server's) as a short line: its title,
/// else its text without tags, at most 80 characters.
pub fn html_excerpt(page: &str) -> String {
    let lower = page.to_ascii_lowercase();
    let title = lower.find("<title").and_then(|open| {
        let start = open + lower[open..].find('>')? + 1;
        let end = start + lower[start..].find("</title")?;
        Some(&page[start..end])
    });
    let text = match title {
        Some(title) => title.to_string(),
        None => {
            let mut out = String::new();
            let mut in_tag = false;
            for c in page.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' if in_tag => {
                        in_tag = false;
                        out.push(' ');
                    }
                    c if !in_tag => out.push(c),
                    _ => {}
                }
            }
            out
        }
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = words.join(" ");
    let mut short: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        short.push('…');
    }
    if short.is_empty() {
        "an HTML page".into()
    } else {
        format!("an HTML page: {short}")
    }
}

/// Why an answer stopped part-way, in words: reqwest says "error decoding
/// response body" for a body that stalled until the time limit.
fn broke_off(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "reading the answer: it stopped part-way and timed out".into();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("reading the answer: {cause}")
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn an_html_error_page_is_one_short_line() {
        let page = "<!DOCTYPE html>\n<html><head><style>body{}</style><title>502 Bad Gateway</title></head>\n<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";
        assert_eq!(html_excerpt(page), "an HTML page: 502 Bad Gateway");
        let untitled = format!("<html><body><p>Oops {}</p></body></html>", "x ".repeat(100));
        let line = html_excerpt(&untitled);
        assert!(line.starts_with("an HTML page: Oops x x"), "{line}");
        assert!(line.chars().count() < 100 && line.ends_with('…'), "{line}");
    }

    /// An answer that stops part-way until the time limit is said to be
    /// that, not "error decoding response body".
    #[tokio::test]
    async fn an_answer_that_stalls_part_way_says_so() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 1024];
            let _ = socket.read(&mut head).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n[{\"key\":")
                .await;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(300))
            .build()
            .unwrap();
        let response = client.get(format!("http://{addr}/")).send().await.unwrap();
        let err = read_capped(response, 1 << 20).await.unwrap_err();
        assert_eq!(err, "reading the answer: it stopped part-way and timed out");
    }
}
