//! The last touch on a drawn frame before it is sent: a wide character (CJK,
//! emoji) is two cells, and when something else is drawn over its second cell
//! (a popup's border over a Chinese caption, a pane's edge after the layout
//! moved) the buffer holds both. Sent as is, the terminal draws the wide
//! character over the other one, or half of it next to it; ratatui's diff then
//! skips the covered cell. Such a character is cleared: the cell it leaves
//! shows a space, and what was drawn over its second half shows whole.

use ratatui::buffer::Buffer;

/// Clears every wide character whose second cell holds something else, or
/// that would run past the buffer's right edge.
pub fn clear_covered_wide(buf: &mut Buffer) {
    let area = buf.area;
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let wide = unicode_width::UnicodeWidthStr::width(buf[(x, y)].symbol()) > 1;
            if !wide {
                continue;
            }
            // ratatui leaves a space in the second cell of what it draws.
            let covered = x + 1 >= area.right() || buf[(x + 1, y)].symbol() != " ";
            if covered {
                buf[(x, y)].set_symbol(" ");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    #[test]
    fn a_wide_character_drawn_over_is_cleared_and_one_left_whole_is_kept() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 6, 1));
        buf.set_string(0, 0, "实验室", Style::new());
        // A border drawn over the second half of 验.
        buf.set_string(3, 0, "│", Style::new());
        clear_covered_wide(&mut buf);
        let line: Vec<&str> = (0..6).map(|x| buf[(x, 0)].symbol()).collect();
        assert_eq!(line, ["实", " ", " ", "│", "室", " "]);
    }
}
