"""Static files shipped with colabtray: icons, sign-in result pages, desktop entries."""
