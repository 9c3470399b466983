//! Reading an HTTP answer's body with a ceiling: a broken or hostile server
//! that streams without end is refused at the cap, not held in memory until
//! the request's timeout.

/// The body of `response`, read as it arrives; an error past `max` bytes.
pub async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is larger than {}", size(max)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}
