//! The language a person reads (`--lang`, else the locale), how wide a text
//! is on a terminal, and `both!`, which puts a text's two languages side by side.

/// The dashboard's and headless timeline's language (`--lang`; default from the locale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Chinese (简体中文).
    Zh,
}

impl Lang {
    /// The locale's language: the first of `LC_ALL`, `LC_MESSAGES`, `LANG` that
    /// is set and not empty decides (POSIX order); `zh*` is Chinese.
    pub fn from_env() -> Lang {
        let var = |name: &str| std::env::var(name).ok();
        Lang::from_locale([var("LC_ALL"), var("LC_MESSAGES"), var("LANG")])
    }

    /// As `from_env`, from the variables' values in that order.
    pub fn from_locale(values: [Option<String>; 3]) -> Lang {
        let chosen = values.into_iter().flatten().find(|v| !v.is_empty());
        match chosen {
            Some(v) if v.to_ascii_lowercase().starts_with("zh") => Lang::Zh,
            _ => Lang::En,
        }
    }
}

/// A text with values in both languages, side by side: `both!(lang, en, zh)`.
/// Only the chosen one is built; leaving one out does not compile.
macro_rules! both {
    ($lang:expr, $en:expr, $zh:expr $(,)?) => {
        match $lang {
            $crate::text::lang::Lang::En => $en,
            $crate::text::lang::Lang::Zh => $zh,
        }
    };
}
pub(crate) use both;

/// Display width in terminal columns (CJK and emoji take two).
pub fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locale_picks_the_language() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(Lang::from_locale([None, None, s("zh_CN.UTF-8")]), Lang::Zh);
        assert_eq!(Lang::from_locale([None, None, s("zh_TW")]), Lang::Zh);
        assert_eq!(Lang::from_locale([None, None, s("en_US.UTF-8")]), Lang::En);
        assert_eq!(Lang::from_locale([None, None, None]), Lang::En);
        // LC_ALL wins over LANG; an empty one does not count.
        assert_eq!(
            Lang::from_locale([s("C.UTF-8"), None, s("zh_CN.UTF-8")]),
            Lang::En
        );
        assert_eq!(Lang::from_locale([s(""), None, s("zh_CN.UTF-8")]), Lang::Zh);
    }

    #[test]
    fn chinese_is_two_columns_wide() {
        assert_eq!(width("实例"), 4);
        assert_eq!(width("RUNNING"), 7);
    }
}
