// The checkout form: demo defaults, hints for obvious mistakes while typing, and the body of
// POST /checkout. Hints never block: the services validate everything, and a learner may want to
// see them refuse an order.

export function demoDefaults(now = new Date()) {
  const year = String((now.getFullYear() + 3) % 100).padStart(2, '0');
  return {
    name: 'Ada Lovelace',
    contact: 'ada.lovelace@example.org',
    cardNumber: '4111 1111 1111 1111',
    expirationDate: `12/${year}`,
    cvv: '123',
    street: 'Narva mnt 18',
    city: 'Tartu',
    zip: '51009',
    state: 'Tartumaa',
    country: 'Estonia',
  };
}

export function luhnValid(number) {
  const digits = number.replace(/[\s-]/g, '');
  if (!/^\d{12,19}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** The hint for each field, or '' when it looks right. */
export function hints(fields, cartSize, now = new Date()) {
  const result = {};
  result.contact = /^\S+@\S+\.\S+$/.test(fields.contact) || /^\+?[\d\s-]{6,}$/.test(fields.contact)
    ? '' : 'An e-mail address or a phone number.';
  result.cardNumber = luhnValid(fields.cardNumber) ? '' : 'This does not look like a card number (12–19 digits, Luhn check).';
  const expiry = /^(\d{2})\s*\/\s*(\d{2}|\d{4})$/.exec(fields.expirationDate.trim());
  if (!expiry || Number(expiry[1]) < 1 || Number(expiry[1]) > 12) {
    result.expirationDate = 'The expiry is MM/YY.';
  } else {
    const year = expiry[2].length === 2 ? 2000 + Number(expiry[2]) : Number(expiry[2]);
    const expired = year * 12 + Number(expiry[1]) < now.getFullYear() * 12 + now.getMonth() + 1;
    result.expirationDate = expired ? 'This card has expired.' : '';
  }
  result.cvv = /^\d{3,4}$/.test(fields.cvv.trim()) ? '' : 'The CVV is 3 or 4 digits.';
  result.terms = fields.terms ? '' : 'The order needs the terms accepted.';
  result.cart = cartSize > 0 ? '' : 'The cart is empty.';
  return result;
}

/** The fields of the form as plain values. */
export function readForm(form) {
  const data = new FormData(form);
  const fields = {};
  for (const [name, value] of data) fields[name] = typeof value === 'string' ? value : '';
  for (const box of form.querySelectorAll('input[type="checkbox"]')) fields[box.name] = box.checked;
  return fields;
}

/** The body of POST /checkout, in the course's API. */
export function checkoutBody(fields, cart, booksById) {
  return {
    user: { name: fields.name, contact: fields.contact },
    creditCard: { number: fields.cardNumber, expirationDate: fields.expirationDate, cvv: fields.cvv },
    userComment: fields.userComment || undefined,
    items: [...cart.lines].map(([bookId, quantity]) => ({ bookId, name: booksById.get(bookId)?.title ?? bookId, quantity })),
    discountCode: fields.discountCode || undefined,
    shippingMethod: fields.shippingMethod,
    giftMessage: fields.giftMessage || undefined,
    giftWrapping: fields.giftWrapping,
    billingAddress: { street: fields.street, city: fields.city, state: fields.state, zip: fields.zip, country: fields.country },
    termsAndConditionsAccepted: fields.terms,
    notificationPreferences: ['email'],
    device: { type: matchMedia('(max-width: 40em)').matches ? 'Smartphone' : 'Desktop', os: navigator.platform },
    browser: { name: 'Web', version: navigator.userAgent.slice(0, 80) },
    appVersion: 'storefront-1',
    screenResolution: `${screen.width}x${screen.height}`,
    referrer: document.referrer,
    deviceLanguage: navigator.language,
  };
}
