"""The near-miss suite's vocabulary (bench/cache_suite.py): the words its templates are filled
with. Each list is shuffled with the suite's seed and cut in two, dev and held-out; none of it
comes from the Quora pairs the semantic-cache bench evaluates on.
"""

UNITS = ["litres", "kilograms", "gallons", "pounds", "ounces", "grams", "cups", "millilitres", "miles",
         "kilometres", "feet", "metres", "inches", "centimetres", "yards", "tablespoons", "teaspoons",
         "pints", "quarts", "stones", "acres", "hectares", "calories", "joules"]
ACCOUNTS = ["savings", "current", "checking", "brokerage", "pension", "business", "joint", "credit",
            "deposit", "investment", "student", "trust"]
GROUPS = ["teachers", "parents", "doctors", "nurses", "engineers", "designers", "students", "landlords",
          "tenants", "managers", "employees", "voters", "politicians", "farmers", "bankers", "artists",
          "scientists", "lawyers", "journalists", "soldiers", "children", "grandparents", "investors",
          "founders"]
ANIMALS = ["cats", "dogs", "foxes", "rabbits", "owls", "mice", "hawks", "snakes", "wolves", "deer",
           "crows", "squirrels", "lions", "zebras", "sharks", "seals", "bears", "salmon"]
FOODS = ["tea", "coffee", "rice", "pasta", "butter", "margarine", "honey", "sugar", "oats", "quinoa",
         "tofu", "chicken", "beef", "lentils", "yoghurt", "cheese", "apples", "bananas", "walnuts",
         "almonds", "spinach", "kale"]

# (positive, affixal negation, a situation for "is it ___ to ...?", its gerund form)
AFFIXAL = [("safe", "unsafe"), ("legal", "illegal"), ("possible", "impossible"), ("suitable", "unsuitable"),
           ("healthy", "unhealthy"), ("ethical", "unethical"), ("common", "uncommon"), ("wise", "unwise"),
           ("polite", "impolite"), ("responsible", "irresponsible"), ("reasonable", "unreasonable"),
           ("acceptable", "unacceptable"), ("advisable", "inadvisable"), ("usual", "unusual"),
           ("fair", "unfair"), ("honest", "dishonest"), ("logical", "illogical"), ("appropriate", "inappropriate"),
           ("useful", "useless"), ("harmful", "harmless"), ("careful", "careless"), ("meaningful", "meaningless"),
           ("painful", "painless"), ("fearful", "fearless")]
ACTIVITIES = [("swim after eating", "swimming after eating"), ("drive at night", "driving at night"),
              ("run every day", "running every day"), ("fast for a day", "fasting for a day"),
              ("sleep with the window open", "sleeping with the window open"),
              ("drink tap water", "drinking tap water"), ("lift weights daily", "lifting weights daily"),
              ("work from a cafe", "working from a cafe"), ("rent out a spare room", "renting out a spare room"),
              ("camp in the woods", "camping in the woods"), ("buy a used car", "buying a used car"),
              ("hitchhike alone", "hitchhiking alone"), ("cycle to work", "cycling to work"),
              ("record a phone call", "recording a phone call")]
ADJ_NOUNS = ["advice", "rules", "habits", "questions", "jokes", "gifts", "meetings", "rituals", "hobbies",
             "reviews", "promises", "apologies"]

# (verb phrase, object) for explicit negation
NEG_ACTIONS = [("cancel", "subscription"), ("renew", "passport"), ("share", "location"), ("update", "phone"),
               ("reset", "password"), ("delete", "account"), ("charge", "laptop"), ("sell", "car"),
               ("tell", "manager"), ("sign", "contract"), ("water", "plants"), ("feed", "puppy"),
               ("wash", "jacket"), ("freeze", "bread"), ("repaint", "fence"), ("prune", "roses"),
               ("email", "landlord"), ("refinance", "mortgage"), ("unplug", "router"), ("back up", "photos")]

# (word, its opposite: WordNet antonyms and the closed class of place/degree words), used around nouns
OPPOSITE_ADJ = [("shortest", "longest"), ("deepest", "shallowest"), ("highest", "lowest"), ("oldest", "newest"),
                ("widest", "narrowest"), ("hottest", "coldest"), ("wettest", "driest"), ("largest", "smallest"),
                ("fastest", "slowest"), ("heaviest", "lightest"), ("cheapest", "most expensive"),
                ("busiest", "quietest"), ("safest", "most dangerous"), ("thickest", "thinnest"),
                ("loudest", "quietest"), ("strongest", "weakest")]
OPPOSITE_NOUNS = ["river", "bridge", "road", "tunnel", "lake", "mountain", "city", "airport", "railway",
                  "building", "island", "forest", "desert", "canal", "beach", "train"]
PLACES = ["Europe", "Asia", "Africa", "Canada", "Brazil", "Japan", "Australia", "Norway", "Peru", "Kenya",
          "Spain", "India"]
# (verb, its opposite, things either can take)
OPPOSITE_VERBS = [("increase", "decrease", ["the dose", "the volume", "my rent", "the heat"]),
                  ("push", "pull", ["a stuck door", "a heavy sled", "a loaded cart"]),
                  ("inhale", "exhale", ["during a squat", "during a push-up", "when lifting"]),
                  ("buy", "sell", ["shares", "a house", "gold", "bitcoin"]),
                  ("import", "export", ["cars", "wine", "rice", "steel"]),
                  ("borrow", "lend", ["money from friends", "books", "tools"]),
                  ("win", "lose", ["a chess game quickly", "an argument", "a bet"]),
                  ("raise", "lower", ["the price", "my voice", "the blinds"]),
                  ("accept", "reject", ["a job offer", "a friend request", "a counteroffer"]),
                  ("open", "close", ["a bank account", "a shop", "the windows"]),
                  ("arrive", "leave", ["at the airport", "at a party", "at work"]),
                  ("tighten", "loosen", ["a bolt", "the strings", "a belt"])]
PRODUCTS = ["laptops", "phones", "headphones", "cameras", "monitors", "tablets", "bikes", "watches",
            "speakers", "printers", "keyboards", "projectors"]
SERVICES = ["gyms", "museums", "libraries", "pharmacies", "banks", "post offices", "pools", "clinics",
            "markets", "barbers"]

MEDIA = [("dog", "breed"), ("bird", "species"), ("plant", "kind"), ("car", "model"), ("painting", "style"),
         ("building", "style"), ("flower", "kind"), ("mushroom", "kind"), ("snake", "species"),
         ("insect", "kind"), ("font", "name"), ("rock", "type"), ("tree", "kind"), ("cat", "breed")]
CARRIERS = ["image", "photo", "picture", "video", "screenshot", "song", "clip", "document", "file", "chart",
            "recording", "diagram"]

# non-Latin scripts: one template per script, words to put in it
SCRIPTS = {
    "zh": ("我想学{}", "怎么学{}", ["中文", "英语", "日语", "法语", "德语", "韩语", "俄语", "西班牙语", "钢琴",
                                   "吉他", "游泳", "编程", "画画", "做饭"]),
    "ru": ("Как выучить {}?", "Как быстро выучить {}?", ["английский", "немецкий", "французский", "испанский",
                                                          "итальянский", "китайский", "японский", "польский",
                                                          "арабский", "турецкий", "шведский", "греческий"]),
    "ar": ("ما هي عاصمة {}؟", "ما عاصمة {}؟", ["مصر", "المغرب", "تونس", "الأردن", "لبنان", "سوريا", "العراق",
                                                "الجزائر", "ليبيا", "السودان", "قطر", "عمان"]),
    "hi": ("{} की राजधानी क्या है?", "{} की राजधानी कौन सी है?", ["भारत", "नेपाल", "चीन", "जापान", "फ्रांस",
                                                                  "रूस", "मिस्र", "ईरान", "तुर्की", "इटली", "स्पेन",
                                                                  "कनाडा"]),
    "ja": ("{}はどこですか？", "{}はどこにありますか？", ["東京", "大阪", "京都", "札幌", "福岡", "名古屋", "神戸",
                                                          "横浜", "広島", "仙台", "奈良", "那覇"]),
    "el": ("Πού είναι η {};", "Πού βρίσκεται η {};", ["Αθήνα", "Πάτρα", "Λάρισα", "Κρήτη", "Ρόδος", "Κέρκυρα",
                                                       "Σάμος", "Νάξος", "Χίος", "Λέσβος"]),
}

QUESTIONS = ["how do I reverse a list in Python", "what is a good name for a cat", "how long should I boil an egg",
             "how do I remove a wine stain", "what is the capital of Australia", "how do I tie a bowline knot",
             "how many cups are in a litre", "what is compound interest", "how do I unclog a sink",
             "how do I centre a div", "why is the sky blue", "how do I make cold brew coffee",
             "what does a router do", "how do I write a cover letter", "how do I stop a dripping tap",
             "what is a mutual fund"]
RANKED = ["universities in Canada", "beaches in Portugal", "podcasts about history", "books on statistics",
          "museums in Paris", "hiking trails in Wales", "programming languages for beginners",
          "restaurants in Lisbon", "board games for families", "films of the nineties",
          "apps for learning Spanish", "exercises for back pain"]
